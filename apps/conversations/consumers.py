"""Websocket consumers: authenticate, join groups, forward events. Nothing else."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.bots.platforms.base import WebhookRejected
from apps.conversations import services
from apps.conversations.events import conversation_group
from apps.conversations.views import VISITOR_SESSION_KEY


class WebChatConsumer(AsyncJsonWebsocketConsumer):
    """/ws/chat/<bot id>/: one visitor's chat with a web bot."""

    group: str | None = None

    async def connect(self):
        user = self.scope.get("user")
        session = self.scope.get("session")
        visitor_id = await database_sync_to_async(
            lambda: session.get(VISITOR_SESSION_KEY) if session is not None else None
        )()
        chat = await database_sync_to_async(services.web_chat_open)(
            bot_id=self.scope["url_route"]["kwargs"]["bot_id"],
            visitor_id=visitor_id,
            is_staff=bool(user and user.is_staff),
            visitor_name=user.get_username() if user and user.is_authenticated else "Visitor",
        )
        if chat is None:
            await self.close(code=4403)
            return
        self.chat = chat
        await self.accept()
        if chat.conversation_id is not None:
            await self._join(chat.conversation_id)
        await self.send_json({"type": "history", "messages": chat.history})

    async def _join(self, conversation_id: int) -> None:
        if self.group is None:
            self.group = conversation_group(conversation_id)
            await self.channel_layer.group_add(self.group, self.channel_name)

    async def disconnect(self, code):
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        try:
            inbound = self.chat.adapter.parse_frame(
                visitor_id=self.chat.visitor_id, visitor_name=self.chat.visitor_name, frame=content
            )
        except WebhookRejected as error:
            await self.send_json({"type": "error", "error": str(error)})
            return
        conversation_id = await database_sync_to_async(services.web_chat_conversation)(
            chat=self.chat, inbound=inbound
        )
        # Join before the message is stored, so no streamed token is missed.
        await self._join(conversation_id)
        message = await database_sync_to_async(services.message_ingest)(
            bot=self.chat.bot, inbound=inbound
        )
        await self.send_json(
            {
                "type": "ack",
                "id": inbound.platform_message_id,
                "message_id": message.pk if message else None,
                "duplicate": message is None,
            }
        )

    async def conversation_event(self, event):
        await self.send_json(event["event"])
