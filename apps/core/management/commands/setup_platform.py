import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

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
                    "  Log in at http://127.0.0.1:8000/admin/ with\n"
                    f"      user: admin\n      password: {password}\n"
                    "  (shown once; change it with "
                    "`uv run python manage.py changepassword admin`)\n"
                )
            )
        created = local_model_provision()
        if created:
            provider, profile = created
            bot = profile.bots.first()
            self.stdout.write(
                self.style.SUCCESS(
                    f"  Created provider {provider.name!r}, profile {profile.name!r} and the web "
                    f"chat bot {bot.name!r}:\n      http://127.0.0.1:8000/chat/{bot.pk}/\n"
                )
            )
