"""Writes about a platform chat as a whole (not one message)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from apps.bots.models import Bot
from apps.bots.platforms import adapter_for, platform_spec
from apps.bots.platforms.base import DeliveryError, SenderNames, clean_name
from apps.conversations.models import Conversation
from apps.conversations.services.dispatch import dispatch_sender_name
from apps.core.redis import get_redis

logger = logging.getLogger(__name__)

# A bot whose platform refused to name a user (a missing contact scope, a user outside
# the app's range) is not asked again for this long: each message would ask otherwise.
NAMES_REFUSED_SECONDS = 3600


def _names_refused_key(bot_id: object) -> str:
    return f"assistant:names-refused:{bot_id}"


def senders_unnamed(*, conversation: Conversation, senders: list[str]) -> list[str]:
    """Which of these senders have no name yet on a platform that can be asked for one."""
    spec = platform_spec(conversation.bot.platform)
    if spec is None or not spec.looks_up_sender_names:
        return []
    named = conversation.participants
    return [sender for sender in dict.fromkeys(senders) if sender and not named.get(sender)]


def sender_names_ask(*, conversation_id: int, bot_id: object, senders: list[str]) -> int:
    """Have these senders' names looked up (a task each), unless the bot's platform refused
    names lately; returns how many were asked for."""
    if not senders or get_redis().exists(_names_refused_key(bot_id)):
        return 0
    for sender_id in senders:
        dispatch_sender_name(conversation_id, sender_id)
    return len(senders)


def participant_name_learn(*, conversation_id: int, sender_id: str) -> str:
    """Ask the platform the name of a sender its messages name by id only, and keep it in
    the conversation's participants (staff see who wrote). Returns the name ("" if none).

    Best effort: a refusal is logged and the bot is not asked again for
    NAMES_REFUSED_SECONDS; a passing failure is tried again at the sender's next message.
    """
    conversation = Conversation.objects.select_related("bot").filter(pk=conversation_id).first()
    if conversation is None:
        return ""
    if conversation.participants.get(sender_id):
        return conversation.participants[sender_id]
    refused_key = _names_refused_key(conversation.bot_id)
    if get_redis().exists(refused_key):
        return ""
    adapter = adapter_for(conversation.bot)
    if not isinstance(adapter, SenderNames):
        return ""
    try:
        name = clean_name(adapter.sender_name(sender_id))
    except DeliveryError as error:
        if not error.retryable:
            get_redis().set(refused_key, str(error)[:200], ex=NAMES_REFUSED_SECONDS)
            logger.warning(  # once per bot and NAMES_REFUSED_SECONDS at most
                "bot %s: the platform did not name user %s (%s); not asked again for %s s",
                conversation.bot_id,
                sender_id,
                error,
                NAMES_REFUSED_SECONDS,
            )
        return ""
    if name:
        with transaction.atomic():
            locked = Conversation.objects.select_for_update().get(pk=conversation_id)
            locked.participants = {**locked.participants, sender_id: name}
            locked.save(update_fields=["participants"])
    return name


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
