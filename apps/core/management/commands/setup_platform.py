import os

from django.core.management.base import BaseCommand

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
                    "\n  Created the first admin account.\n"
                    f"  Log in at http://127.0.0.1:{os.environ.get('PORT', '8000')}/admin/ with\n"
                    f"      user: admin\n      password: {password}\n"
                    f"  (also in {ADMIN_PASSWORD_FILE.name} until you delete it; change it with "
                    "`uv run python manage.py changepassword admin`)\n"
                )
            )
        created = local_model_provision()
        if created:
            provider, profile = created
            self.stdout.write(
                self.style.SUCCESS(
                    f"  Created provider {provider.name!r}, profile {profile.name!r} and a web "
                    "chat bot that uses them."
                )
            )
        port = os.environ.get("PORT", "8000")
        for bot in Bot.objects.filter(platform=Platform.WEB, enabled=True):
            self.stdout.write(f"  Web chat {bot.name!r}: http://127.0.0.1:{port}/chat/{bot.pk}/")
