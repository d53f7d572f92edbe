"""Writes about a platform chat as a whole (not one message)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.bots.models import Bot
from apps.conversations.models import Conversation


@transaction.atomic
def chat_migrate(*, bot: Bot, old_chat_id: str, new_chat_id: str) -> int:
    """Follow a chat that moved to a new id (a Telegram group upgraded to a supergroup).

    The bot's conversations in the old chat continue in the new one; returns how many moved.
    """
    if Conversation.objects.filter(bot=bot, chat_id=new_chat_id, closed_at__isnull=True).exists():
        # The new chat already has an open conversation: the old one ends here.
        Conversation.objects.filter(bot=bot, chat_id=old_chat_id, closed_at__isnull=True).update(
            closed_at=timezone.now()
        )
    return Conversation.objects.filter(bot=bot, chat_id=old_chat_id).update(chat_id=new_chat_id)
