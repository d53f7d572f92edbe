import uuid

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from apps.bots.choices import Platform
from apps.bots.models import Bot
from apps.bots.platforms.telegram.adapter import TelegramAdapter
from apps.bots.services import bot_identity_store, webhook_url


class Command(BaseCommand):
    help = "Register a Telegram bot's webhook (with its secret token) with the Bot API."

    def add_arguments(self, parser):
        parser.add_argument("bot", help="The bot's id or exact name.")
        parser.add_argument(
            "--url",
            help="The public https URL Telegram should call. Defaults to the bot's webhook URL "
            "under PUBLIC_BASE_URL.",
        )

    def handle(self, *args, bot, url=None, **options):
        bots = Bot.objects.filter(platform=Platform.TELEGRAM)
        found = bots.filter(name=bot).first()
        if found is None:
            try:
                found = bots.filter(pk=uuid.UUID(bot)).first()
            except ValueError:
                found = None
        if found is None:
            raise CommandError(_("No Telegram bot with id or name “%(bot)s”.") % {"bot": bot})
        url = url or webhook_url(found)
        if not url.startswith("https://"):
            raise CommandError(
                _("Telegram only calls https URLs; got %(url)s. Pass --url.") % {"url": url}
            )
        try:
            username = TelegramAdapter(found).set_webhook(url)[1]
        except Exception as error:  # noqa: BLE001 - reported to the operator
            raise CommandError(
                _("Telegram refused the webhook: %(error)s") % {"error": error}
            ) from error
        bot_identity_store(bot=found, username=username)
        self.stdout.write(
            self.style.SUCCESS(
                _("Webhook for %(bot)s set to %(url)s") % {"bot": found.name, "url": url}
            )
        )
