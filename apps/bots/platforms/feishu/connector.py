"""Feishu/Lark long connection: events over lark-oapi's WebSocket client, no public URL needed.

The supervisor (apps.bots.connectors.supervisor) runs one FeishuConnector per bot in
persistent mode, each in its own thread. Events arrive already authenticated (the
connection itself is), so there is no decryption or signature work; handlers only
turn the event into InboundMessage/InboundAction and call bots.services.inbound_receive.

lark-oapi pitfall: `lark_oapi.ws.client` binds one module-level event loop at import
time and calls `loop.run_until_complete` / `loop.create_task` on it, so two clients in
two threads share (and fight over) one loop ("This event loop is already running").
We replace that module global once with a proxy that resolves to the calling thread's
own loop, and give every connector thread a fresh loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import lark_oapi as lark
import lark_oapi.ws.client as lark_ws_client
from django.db import close_old_connections
from lark_oapi.event.callback.model.p2_card_action_trigger import (
    P2CardActionTrigger,
    P2CardActionTriggerResponse,
)

from apps.bots.platforms.feishu.adapter import FeishuAdapter
from apps.bots.platforms.feishu.reply import webhook_reply

if TYPE_CHECKING:
    from apps.bots.models import Bot

logger = logging.getLogger(__name__)


class _ThreadLoop:
    """Stands in for lark_oapi.ws.client's module-level `loop`: each thread's own loop."""

    _local = threading.local()

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._local.loop = loop

    def __getattr__(self, name: str) -> Any:
        loop = getattr(self._local, "loop", None)
        if loop is None:
            raise RuntimeError("no event loop bound to this thread for lark-oapi's ws client")
        return getattr(loop, name)


_THREAD_LOOP = _ThreadLoop()
_install_lock = threading.Lock()


def _install_thread_loop() -> None:
    with _install_lock:
        if lark_ws_client.loop is not _THREAD_LOOP:
            lark_ws_client.loop = _THREAD_LOOP


def _event_dict(event: Any) -> dict[str, Any]:
    """The wire form of an event lark-oapi already parsed (it renames the schema to "p2")."""
    data = json.loads(lark.JSON.marshal(event))
    data["schema"] = "2.0"
    return data


class FeishuConnector:
    """One Feishu bot's long connection: receives its events and hands them to ingest."""

    def __init__(self, bot: Bot):
        self.bot = bot
        self.adapter = FeishuAdapter(bot)
        self.heartbeat: float | None = None
        self.status = "starting"
        # lark calls handlers inside its event loop, where Django refuses ORM calls;
        # they run on this thread instead (milliseconds: store and enqueue only).
        self._ingest = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feishu-ingest")

    # Events -------------------------------------------------------------------------------

    def event_handler(self) -> lark.EventDispatcherHandler:
        """The dispatcher lark's ws client calls for each event frame."""
        return (
            lark.EventDispatcherHandler.builder("", "")
            .register_p2_customized_event("im.message.receive_v1", self._on_message)
            .register_p2_card_action_trigger(self._on_card_action)
            .build()
        )

    def receive(self, data: dict[str, Any]) -> int:
        """Ingest one event; returns how many new items were stored."""
        from apps.bots.services import event_receive

        # The same path as a webhook body: an event we cannot use is kept as an
        # unprocessed event (Feishu would only send it again).
        try:
            return event_receive(bot=self.bot, body=json.dumps(data).encode(), adapter=self.adapter)
        finally:
            close_old_connections()

    def _on_message(self, event: lark.CustomizedEvent) -> None:
        self.heartbeat = time.monotonic()
        self._ingest.submit(self.receive, _event_dict(event)).result()

    def _on_card_action(self, event: P2CardActionTrigger) -> P2CardActionTriggerResponse:
        self.heartbeat = time.monotonic()
        body = self._ingest.submit(self._card_action, _event_dict(event)).result()
        return P2CardActionTriggerResponse(body)

    def _card_action(self, data: dict[str, Any]) -> dict[str, Any]:
        with webhook_reply() as reply:
            self.receive(data)
        return reply.body()

    # Connection ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Keep the connection until `stop` is set. Raises when it cannot connect."""
        _install_thread_loop()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # lark's client builds loop-bound helpers in __init__
        _THREAD_LOOP.bind(loop)
        self._ingest = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feishu-ingest")
        try:
            client = lark.ws.Client(
                self.bot.config.get("app_id", ""),
                self.bot.config.get("app_secret", ""),
                event_handler=self.event_handler(),
                domain=self.bot.platform_api_base_url,
                auto_reconnect=True,
                log_level=lark.LogLevel.WARNING,
            )
            loop.run_until_complete(self._serve(client, stop))
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            _THREAD_LOOP.bind(None)
            asyncio.set_event_loop(None)
            loop.close()
            self._ingest.shutdown(wait=True)
            self.status = "stopped"

    async def _serve(self, client: lark.ws.Client, stop: threading.Event) -> None:
        # lark's start() blocks forever; its parts let us stop when asked. A failure
        # to connect raises here (the supervisor backs off and retries); a dropped
        # connection later is re-established by the client itself (auto_reconnect).
        self.status = "connecting"
        await client._connect()
        self.status = "connected"
        ping = asyncio.ensure_future(client._ping_loop())
        try:
            while not stop.is_set():
                if client._conn is not None:
                    self.heartbeat = time.monotonic()
                    self.status = "connected"
                else:
                    self.status = "reconnecting"
                await asyncio.sleep(0.2)
        finally:
            client._auto_reconnect = False
            ping.cancel()
            with contextlib.suppress(Exception):
                await client._disconnect()
