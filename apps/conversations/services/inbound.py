"""What the platforms hand over: messages, button presses and moved chats, written here."""

from __future__ import annotations

from apps.bots.models import Bot
from apps.bots.platforms.base import ChatMoved, InboundAction, InboundMessage
from apps.conversations.services.actions import action_ingest
from apps.conversations.services.chats import chat_migrate
from apps.conversations.services.ingest import message_ingest


def inbound_store(*, bot: Bot, item: InboundMessage | InboundAction | ChatMoved) -> bool:
    """Store one cleaned item a platform sent; True when it was new.

    Registered with `bots.services.inbound_sink_set` when the app starts.
    """
    if isinstance(item, ChatMoved):
        chat_migrate(bot=bot, old_chat_id=item.old_chat_id, new_chat_id=item.new_chat_id)
        return False
    if isinstance(item, InboundAction):
        return action_ingest(bot=bot, action=item) is not None
    return message_ingest(bot=bot, inbound=item) is not None
