"""What a Feishu webhook call answers: a challenge echo, a card-action toast, or success."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass
class WebhookReply:
    """What the Feishu webhook view answers: a challenge echo, a card-action toast, or success."""

    challenge: str | None = None
    toasts: list[str] = field(default_factory=list)
    is_card_action: bool = False

    def body(self) -> dict[str, Any]:
        if self.challenge is not None:
            return {"challenge": self.challenge}
        if self.is_card_action:
            if not self.toasts:
                return {}
            return {"toast": {"type": "info", "content": self.toasts[-1]}}
        return {"msg": "success"}

    @staticmethod
    def error(message: str) -> dict[str, Any]:
        """What a refused call answers."""
        return {"msg": message}


_reply: ContextVar[WebhookReply | None] = ContextVar("feishu_webhook_reply", default=None)


@contextmanager
def webhook_reply() -> Iterator[WebhookReply]:
    """Collect, while handling one webhook call, what Feishu must get back in the response.

    Card callbacks are answered in the HTTP response (within 3 s): answer_action()
    records its toast here, and the view returns `reply.body()`.
    """
    reply = WebhookReply()
    token = _reply.set(reply)
    try:
        yield reply
    finally:
        _reply.reset(token)
