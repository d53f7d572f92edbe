"""Reads of bots."""

from __future__ import annotations

import uuid

from apps.bots.models import Bot
from apps.core.config import config_cache


def bot_config_get(*, bot_id: uuid.UUID | str) -> Bot | None:
    """The bot with its model profile, fallback and providers, from this process's cache.

    Shared between threads and turns: read it, never change or save it.
    """
    return config_cache.get(("bot", str(bot_id)), lambda: _load(bot_id))


def _load(bot_id: uuid.UUID | str) -> Bot | None:
    return (
        Bot.objects.select_related("profile__provider", "profile__fallback__provider")
        .filter(pk=bot_id)
        .first()
    )
