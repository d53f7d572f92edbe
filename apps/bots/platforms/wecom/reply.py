"""What a WeCom callback answers: plain text (the URL check's echo, or nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class WebhookReply:
    """WeCom wants an empty body (or a passive reply) within 5 s; errors as plain text."""

    def body(self) -> str:
        return ""

    @staticmethod
    def error(message: str) -> str:
        return message


_REPLY = WebhookReply()  # holds nothing per call: one for all


@contextmanager
def webhook_reply() -> Iterator[WebhookReply]:
    yield _REPLY
