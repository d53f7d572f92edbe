"""The only interface the rest of the code sees of a chat platform.

A platform module turns the platform's wire format into `InboundMessage`s and
sends `OutboundMessage`s. Adding a platform means one new module registered here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from apps.bots.models import Bot


@dataclass(frozen=True)
class InboundMessage:
    """A user's message, platform-neutral."""

    external_id: str  # the platform's event/update id: ingest dedups on it
    chat_id: str
    chat_type: str  # "private" | "group"
    sender_id: str
    sender_name: str
    text: str
    platform_message_id: str = ""  # what a reply quotes


@dataclass(frozen=True)
class OutboundMessage:
    """An answer to deliver into a chat."""

    conversation_id: int
    message_id: int
    chat_id: str
    text: str
    reply_to_platform_message_id: str = ""


@dataclass(frozen=True)
class SentMessage:
    platform_message_id: str


class WebhookRejected(Exception):
    """A webhook call that must not be stored. `status` is the 4xx to answer."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.status = status


class DeliveryError(Exception):
    """Sending failed. `retryable` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class PlatformAdapter(Protocol):
    bot: Bot

    def verify(self, *, headers: dict[str, str], body: bytes) -> None:
        """Raise WebhookRejected unless the call really comes from the platform."""

    def parse(self, *, body: bytes) -> list[InboundMessage]:
        """The messages in a webhook body worth answering (possibly none)."""

    def send(self, message: OutboundMessage) -> SentMessage:
        """Deliver an answer; raise DeliveryError on failure."""


def adapter_for(bot: Bot) -> PlatformAdapter:
    from apps.bots.platforms import telegram, web

    adapters = {"telegram": telegram.TelegramAdapter, "web": web.WebChatAdapter}
    try:
        return adapters[bot.platform](bot)
    except KeyError:
        raise DeliveryError(f"no adapter for platform {bot.platform!r}", retryable=False) from None
