"""The rows the benchmark needs, made through the project's models and services as
tests/factories.py makes them: a provider and a profile pointing at the fake model,
and a Telegram bot pointing at the fake Bot API with a known webhook secret.

    DATABASE_URL=... REDIS_URL=... python bench/setup_db.py MODEL_URL TELEGRAM_URL SECRET

Prints the bot's id. Run on a freshly migrated database (bench/run.py does).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")


def main(model_url: str, telegram_url: str, secret: str) -> None:
    import django

    django.setup()
    from apps.bots.choices import Platform
    from apps.bots.services import bot_create
    from apps.providers.models import ModelProfile, Provider

    provider = Provider.objects.create(
        name="bench model", base_url=model_url, api_key="sk-bench", request_timeout=30
    )
    # Generous time-outs: the bench measures delays, it must not turn them into failures.
    profile = ModelProfile.objects.create(
        name="bench", provider=provider, model="bench", first_token_timeout=10, stall_timeout=10
    )
    bot = bot_create(
        name="bench",
        platform=Platform.TELEGRAM,
        profile=profile,
        api_base_url=telegram_url,
        # The fake accepts any token.
        config={"token": "123456:BENCH-token", "webhook_secret": secret},
        platform_username="bench_bot",
    )
    print(bot.pk)


if __name__ == "__main__":
    main(*sys.argv[1:4])
