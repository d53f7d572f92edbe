"""Reads for the pages of the core app (the landing page)."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.bots.choices import Platform
from apps.bots.models import Bot


def web_chat_bots_list() -> QuerySet[Bot]:
    """The web-chat bots anyone may talk to now (enabled), by name."""
    return Bot.objects.filter(platform=Platform.WEB, enabled=True).order_by("name")
