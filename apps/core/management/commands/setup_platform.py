import os

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from apps.bots.choices import Platform
from apps.bots.models import Bot
from apps.core.first_admin import ADMIN_PASSWORD_FILE, first_admin_create
from apps.providers.local import local_model_provision


class Command(BaseCommand):
    help = (
        "First-start set-up: create the first admin account if there is none, and the local "
        "model provider, profile and web-chat bot if no provider exists. Safe to run again."
    )

    def handle(self, *args, **options):
        password = first_admin_create()
        if password is not None:
            self.stdout.write(
                self.style.SUCCESS(
                    _(
                        "\n  Created the first admin account.\n"
                        "  Log in at %(url)s with\n"
                        "      user: admin\n      password: %(password)s\n"
                        "  (also in %(file)s until you delete it; change it with "
                        "`uv run python manage.py changepassword admin`)\n"
                    )
                    % {
                        "url": f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/admin/",
                        "password": password,
                        "file": ADMIN_PASSWORD_FILE.name,
                    }
                )
            )
        created = local_model_provision()
        if created:
            provider, profile = created
            self.stdout.write(
                self.style.SUCCESS(
                    _(
                        "  Created provider “%(provider)s”, profile “%(profile)s” and a web "
                        "chat bot that uses them."
                    )
                    % {"provider": provider.name, "profile": profile.name}
                )
            )
        port = os.environ.get("PORT", "8000")
        for bot in Bot.objects.filter(platform=Platform.WEB, enabled=True):
            self.stdout.write(
                _("  Web chat “%(bot)s”: %(url)s")
                % {"bot": bot.name, "url": f"http://127.0.0.1:{port}/chat/{bot.pk}/"}
            )
