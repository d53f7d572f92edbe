import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apps.bots.choices import Platform
from apps.bots.models import Bot
from apps.providers.local import local_model_provision


class Command(BaseCommand):
    help = (
        "First-start set-up: create the first admin account if there is none, and the local "
        "model provider, profile and web-chat bot if no provider exists. Safe to run again."
    )

    def handle(self, *args, **options):
        User = get_user_model()
        if not User.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "", password)
            self.stdout.write(
                self.style.SUCCESS(
                    "\n  Created the first admin account.\n"
                    f"  Log in at http://127.0.0.1:{os.environ.get('PORT', '8000')}/admin/ with\n"
                    f"      user: admin\n      password: {password}\n"
                    "  (shown once; change it with "
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
