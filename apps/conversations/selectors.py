"""Reads for conversations and messages."""

from django.db.models import QuerySet

from apps.conversations.models import Conversation, Message


def conversation_list(*, bot_id=None, platform: str | None = None) -> QuerySet[Conversation]:
    """Conversations, newest activity first, optionally for one bot or platform."""
    conversations = Conversation.objects.select_related("bot")
    if bot_id:
        conversations = conversations.filter(bot_id=bot_id)
    if platform:
        conversations = conversations.filter(bot__platform=platform)
    return conversations.order_by("-last_activity_at", "-id")


def message_list(*, conversation_id: int) -> QuerySet[Message]:
    """A conversation's messages in order."""
    return Message.objects.filter(conversation_id=conversation_id).order_by("id")
