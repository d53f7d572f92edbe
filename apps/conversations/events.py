"""Publishing live events to websockets: the web chat and the staff console.

Everything goes through `publish()`, which sends after the surrounding
transaction commits, so a listener never sees a row that could still roll back.

Groups:
- `conversation.<id>`: the conversation's messages and streamed tokens (the web
  chat visitor and staff watching that conversation);
- `console`: one `ConversationEvent` (a summary row) per change, for the live list;
- `console.conversation.<id>`: the same summary for staff watching one conversation
  (its takeover state), kept off the visitor's group.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

CONSOLE_GROUP = "console"


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def console_conversation_group(conversation_id: int) -> str:
    return f"console.conversation.{conversation_id}"


@dataclass(frozen=True)
class TokenEvent:
    """Text an answer gained while streaming."""

    message_id: int
    delta: str
    type: str = "token"


@dataclass(frozen=True)
class MessageEvent:
    """A message was stored or changed state (the full current row)."""

    message: dict[str, Any]
    type: str = "message"


@dataclass(frozen=True)
class ConversationEvent:
    """A conversation's summary changed (new message, takeover, hand back, feedback)."""

    conversation: dict[str, Any]
    type: str = "conversation"


@dataclass(frozen=True)
class ConversationChanged:
    """Ask `publish()` to send the conversation's fresh summary to the console."""

    type: str = "conversation_changed"


Event = TokenEvent | MessageEvent | ConversationChanged


def message_payload(message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "author": message.author,
        "text": message.text,
        "status": message.status,
        "error": message.error,
        "created_at": message.received_at.isoformat(),
    }


def _send(group: str, event: TokenEvent | MessageEvent | ConversationEvent) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        # Consumers receive it as their `conversation_event` handler.
        async_to_sync(layer.group_send)(
            group, {"type": "conversation.event", "event": asdict(event)}
        )
    except Exception:  # noqa: BLE001 - live views are best effort; the database is the record
        logger.exception("publishing %s to %s failed", event.type, group)


def _send_summary(conversation_id: int) -> None:
    from apps.conversations.selectors import conversation_summary

    try:
        summary = conversation_summary(conversation_id=conversation_id)
    except Exception:  # noqa: BLE001 - the console is best effort; the database is the record
        logger.exception("summarising conversation %s failed", conversation_id)
        return
    if summary is None:
        return
    event = ConversationEvent(summary)
    _send(CONSOLE_GROUP, event)
    _send(console_conversation_group(conversation_id), event)


def _deliver(conversation_id: int, event: Event) -> None:
    if not isinstance(event, ConversationChanged):
        _send(conversation_group(conversation_id), event)
    # Tokens change nothing the list shows; everything else refreshes the summary.
    if not isinstance(event, TokenEvent):
        _send_summary(conversation_id)


def publish(conversation_id: int, event: Event) -> None:
    """Send `event` to everyone watching the conversation, once the transaction commits.

    Message and state changes also refresh the conversation's row in the console.
    """
    transaction.on_commit(lambda: _deliver(conversation_id, event))
