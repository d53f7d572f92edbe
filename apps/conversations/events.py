"""Publishing live events to websockets (web chat now, the staff console later).

Everything goes through `publish()`, which sends after the surrounding
transaction commits, so a listener never sees a row that could still roll back.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


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


def _send(group: str, event: TokenEvent | MessageEvent) -> None:
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


def publish(conversation_id: int, event: TokenEvent | MessageEvent) -> None:
    """Send `event` to everyone watching the conversation, once the transaction commits."""
    transaction.on_commit(lambda: _send(conversation_group(conversation_id), event))
