"""The reply pipeline: ingest, one turn at a time per conversation, delivery.

See DESIGN.md "The life of a message". The database is the source of truth:
every step reads state from rows and is safe to run twice.
"""

from apps.conversations.services.actions import action_ingest
from apps.conversations.services.chats import chat_migrate, participant_name_learn
from apps.conversations.services.delivery import (
    DeliveryRetry,
    message_deliver,
    messages_sweep,
    reply_system,
)
from apps.conversations.services.inbound import inbound_store
from apps.conversations.services.ingest import (
    WebChat,
    message_ingest,
    web_chat_conversation,
    web_chat_open,
)
from apps.conversations.services.turns import message_retry

__all__ = [
    "DeliveryRetry",
    "WebChat",
    "action_ingest",
    "chat_migrate",
    "inbound_store",
    "message_deliver",
    "message_ingest",
    "message_retry",
    "messages_sweep",
    "participant_name_learn",
    "reply_system",
    "web_chat_conversation",
    "web_chat_open",
]
