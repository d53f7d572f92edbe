"""Telegram (Bot API through python-telegram-bot): webhook or long polling."""

from django.utils.translation import gettext_lazy as _

from apps.bots.platforms.base import ConfigField, PlatformSpec

PLATFORM = PlatformSpec(
    name="telegram",
    label=_("Telegram"),
    adapter="apps.bots.platforms.telegram.adapter.TelegramAdapter",
    onboarding="apps.bots.platforms.telegram.onboarding.SETUP",
    default_api_base_url="https://api.telegram.org",
    connector="apps.bots.platforms.telegram.connector.TelegramPoller",
    config=(
        ConfigField(
            key="token",
            label=_("Telegram token"),
            help_text=_("Telegram: the token from @BotFather."),
            secret=True,
            required=True,
            credential=True,
        ),
        ConfigField(
            key="webhook_secret",
            label=_("Telegram webhook secret"),
            help_text=_(
                "Telegram: the secret Telegram sends with each webhook call. Generated when empty."
            ),
            secret=True,
            generated=True,
        ),
    ),
    credentials_refused=_(
        "Telegram refused this token. Copy it again from @BotFather (it looks like 123456789:AAF…)."
    ),
)
