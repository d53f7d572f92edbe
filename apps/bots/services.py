"""Writes for bots: creating and changing them, and taking webhook calls."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from apps.bots.choices import Platform
from apps.bots.models import Bot
from apps.bots.platforms.base import WebhookRejected, adapter_for


def webhook_url(bot: Bot) -> str | None:
    """The URL the platform should call for this bot (None for the web chat)."""
    if bot.platform == Platform.TELEGRAM:
        path = reverse("webhook-telegram", kwargs={"bot_id": bot.pk})
        return settings.PUBLIC_BASE_URL + path
    return None


def bot_fill_defaults(bot: Bot) -> None:
    """Generate what an admin should not have to invent (the webhook secret)."""
    if bot.platform == Platform.TELEGRAM and not bot.telegram_webhook_secret:
        bot.telegram_webhook_secret = secrets.token_urlsafe(32)


@transaction.atomic
def bot_create(**fields: Any) -> Bot:
    """Create a bot, generating its webhook secret."""
    bot = Bot(**fields)
    bot_fill_defaults(bot)
    bot.full_clean()
    bot.save()
    return bot


@transaction.atomic
def bot_update(*, bot: Bot, **fields: Any) -> Bot:
    """Change a bot's fields, keeping generated secrets in place."""
    for name, value in fields.items():
        setattr(bot, name, value)
    bot_fill_defaults(bot)
    bot.full_clean()
    bot.save()
    return bot


def webhook_receive(*, bot_id, platform: str, headers: dict[str, str], body: bytes) -> int:
    """Verify and parse one webhook call and ingest what it carries.

    Returns how many new messages were stored. Raises WebhookRejected (4xx).
    """
    from apps.conversations.services import message_ingest

    bot = Bot.objects.filter(pk=bot_id, platform=platform).first()
    if bot is None:
        raise WebhookRejected("no such bot", status=404)
    adapter = adapter_for(bot)
    adapter.verify(headers=headers, body=body)
    inbound_messages = adapter.parse(body=body)
    if not bot.enabled:
        return 0
    return sum(message_ingest(bot=bot, inbound=inbound) is not None for inbound in inbound_messages)
