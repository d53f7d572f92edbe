"""Telegram (Bot API through python-telegram-bot): webhook or long polling."""

from django.utils.translation import gettext_lazy as _

from apps.bots.platforms.base import PlatformSpec

PLATFORM = PlatformSpec(
    name="telegram",
    label=_("Telegram"),
    adapter="apps.bots.platforms.telegram.adapter.TelegramAdapter",
    default_api_base_url="https://api.telegram.org",
    connector="apps.bots.platforms.telegram.connector.TelegramPoller",
)
