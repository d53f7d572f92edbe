"""Websocket consumers: authenticate, join groups, forward events. Nothing else."""

from __future__ import annotations

import math

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import translation
from django.utils.translation import gettext

from apps.bots.platforms.base import WebhookRejected
from apps.conversations import services
from apps.conversations.events import (
    CONSOLE_GROUP,
    console_conversation_group,
    conversation_group,
)
from apps.conversations.services.console import (
    ConsoleError,
    web_chat_feedback,
    web_chat_regenerate,
)
from apps.conversations.views import (
    VISITOR_SESSION_KEY,
    bot_preview_permitted,
    console_conversation_snapshot,
    console_permitted,
)
from apps.core.i18n import language_from_scope
from apps.core.metrics import socket_closed, socket_opened
from apps.guard.services import address_flood_check, scope_address


class _CountedSocket(AsyncJsonWebsocketConsumer):
    """Counts its accepted sockets in the `assistant_console_sockets` gauge, by `kind`."""

    kind = ""
    counted = False

    async def accept(self, subprotocol=None, headers=None):
        await super().accept(subprotocol, headers)
        if not self.counted:
            self.counted = True
            socket_opened(kind=self.kind)

    async def websocket_disconnect(self, message):
        if self.counted:
            self.counted = False
            socket_closed(kind=self.kind)
        await super().websocket_disconnect(message)


class WebChatConsumer(_CountedSocket):
    """/ws/chat/<bot id>/: one visitor's chat with a web bot."""

    kind = "web_chat"
    group: str | None = None

    async def connect(self):
        user = self.scope.get("user")
        session = self.scope.get("session")
        visitor_id = await database_sync_to_async(
            lambda: session.get(VISITOR_SESSION_KEY) if session is not None else None
        )()
        may_preview = await database_sync_to_async(bot_preview_permitted)(user)
        chat = await database_sync_to_async(services.web_chat_open)(
            bot_id=self.scope["url_route"]["kwargs"]["bot_id"],
            visitor_id=visitor_id,
            # "is_staff" opens a disabled bot: only to those who may change bots.
            is_staff=may_preview,
            visitor_name=user.get_username() if user and user.is_authenticated else "Visitor",
        )
        if chat is None:
            await self.close(code=4403)
            return
        self.chat = chat
        self.language = language_from_scope(self.scope)
        self.address = scope_address(self.scope)
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
        # Errors are told in the page's language.
        with translation.override(self.language):
            await self._receive(content)

    async def _receive(self, content) -> None:
        flood = await sync_to_async(address_flood_check)(scope="web_chat", address=self.address)
        if not flood.allowed:
            seconds = math.ceil(flood.retry_after)
            await self.send_json(
                {
                    "type": "error",
                    "code": "rate_limited",
                    "retry_after": seconds,
                    "error": gettext(
                        "You are sending messages too fast. Please wait %(seconds)d seconds."
                    )
                    % {"seconds": seconds},
                }
            )
            return
        kind = content.get("type") if isinstance(content, dict) else None
        if kind in ("feedback", "regenerate"):
            await self._answer_action(kind, content)
            return
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

    async def _answer_action(self, kind: str, content: dict) -> None:
        action = web_chat_feedback if kind == "feedback" else web_chat_regenerate
        try:
            await database_sync_to_async(action)(
                conversation_id=self.chat.conversation_id,
                visitor_id=self.chat.visitor_id,
                frame=content,
            )
        except ConsoleError as error:
            await self.send_json({"type": "error", "error": str(error)})
            return
        await self.send_json(
            {
                "type": f"{kind}_ok",
                "message_id": content.get("message_id"),
                **({"rating": content.get("rating")} if kind == "feedback" else {}),
            }
        )

    async def conversation_event(self, event):
        await self.send_json(event["event"])


class _StaffConsumer(_CountedSocket):
    """Staff-only: closes with 4403 unless the user may view conversations."""

    groups_joined: list[str]

    async def connect(self):
        self.groups_joined = []
        if not await database_sync_to_async(console_permitted)(self.scope.get("user")):
            await self.close(code=4403)
            return
        await self.accept()
        await self.joined()

    async def joined(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def _join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.append(group)

    async def disconnect(self, code):
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        pass  # staff act through the console's POST endpoints; this socket only listens

    async def conversation_event(self, event):
        await self.send_json(event["event"])


class ConsoleConsumer(_StaffConsumer):
    """/ws/console/: summary rows of every conversation as they change."""

    kind = "console"

    async def joined(self) -> None:
        await self._join(CONSOLE_GROUP)


class ConsoleConversationConsumer(_StaffConsumer):
    """/ws/console/conversations/<id>/: one conversation's messages, tokens and state."""

    kind = "console_conversation"

    async def joined(self) -> None:
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        # Join first, then send the snapshot, so nothing falls between the two.
        await self._join(conversation_group(conversation_id))
        await self._join(console_conversation_group(conversation_id))
        snapshot = await database_sync_to_async(console_conversation_snapshot)(conversation_id)
        if snapshot is None:
            await self.close(code=4404)
            return
        await self.send_json({"type": "snapshot", **snapshot})
