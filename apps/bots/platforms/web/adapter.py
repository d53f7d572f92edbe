"""The built-in web chat: frames over a Channels websocket, answers over the channel layer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext

from apps.bots.platforms.base import InboundMessage, OutboundMessage, SentMessage, WebhookRejected

if TYPE_CHECKING:
    from apps.bots.models import Bot

MAX_TEXT = 8000


class WebChatAdapter:
    """Web chat. There is no webhook: the websocket consumer hands frames to `parse_frame`.

    Streaming needs no edits here: the pipeline's token events reach the browser directly.
    """

    stream_interval = None
    typing_every = None

    def __init__(self, bot: Bot):
        self.bot = bot

    def typing(self, message: OutboundMessage) -> None:
        pass  # the browser shows a cursor on the answer while it streams

    async def atyping(self, message: OutboundMessage) -> None:
        pass

    async def asend(self, message: OutboundMessage) -> SentMessage:
        return self.send(message)

    def parse_frame(self, *, visitor_id: str, visitor_name: str, frame: Any) -> InboundMessage:
        """A browser's {"type": "message", "id": ..., "text": ...} frame as an InboundMessage."""
        if not isinstance(frame, dict) or frame.get("type") != "message":
            raise WebhookRejected(gettext("expected a frame of type 'message'"), status=400)
        text, client_id = frame.get("text"), frame.get("id")
        if not isinstance(text, str) or not text.strip():
            raise WebhookRejected(gettext("a message needs non-empty text"), status=400)
        if len(text) > MAX_TEXT:
            raise WebhookRejected(
                gettext("a message is at most %(count)d characters") % {"count": MAX_TEXT},
                status=400,
            )
        if not isinstance(client_id, str) or not 1 <= len(client_id) <= 64:
            raise WebhookRejected(gettext("a message needs an id of 1-64 characters"), status=400)
        return InboundMessage(
            external_id=f"{visitor_id}:{client_id}",
            chat_id=visitor_id,
            chat_type="private",
            sender_id=visitor_id,
            sender_name=visitor_name,
            text=text.strip(),
            platform_message_id=client_id,
        )

    def send(self, message: OutboundMessage) -> SentMessage:
        # The browser renders the answer from the "delivered" message event the
        # pipeline publishes; the web chat's "platform" is the channel layer itself.
        return SentMessage(platform_message_id=str(message.message_id))
