"""A loopback fake of the Feishu/Lark Open API (the subset the platform uses).

Speaks the real wire format that lark-oapi calls: tenant_access_token/internal,
im/v1/messages (create, with the uuid de-duplication Feishu applies), reply, PATCH
of a card, message resources, bot info, a user's name (contact/v3/users/:user_id, for
the users in `users`), and the long-connection endpoint discovery.
Faults can be queued per operation: `fail("reply", 429, reset=1)`, `fail("patch",
400, code=230020)`, `fail("reply", 500)`. Every call is recorded in `calls`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import websockets
import websockets.asyncio.server
from lark_oapi.ws.pb.pbbp2_pb2 import Frame

from tests.fakes.server import LoopbackServer, Request, Response

_frame_numbers = itertools.count(1)

ROUTES = [
    ("POST", re.compile(r"^/open-apis/auth/v3/tenant_access_token/internal$"), "token"),
    ("POST", re.compile(r"^/open-apis/im/v1/messages$"), "create"),
    ("POST", re.compile(r"^/open-apis/im/v1/messages/(?P<id>[^/]+)/reply$"), "reply"),
    ("PATCH", re.compile(r"^/open-apis/im/v1/messages/(?P<id>[^/]+)$"), "patch"),
    (
        "GET",
        re.compile(r"^/open-apis/im/v1/messages/(?P<id>[^/]+)/resources/(?P<key>[^/]+)$"),
        "resource",
    ),
    ("GET", re.compile(r"^/open-apis/bot/v3/info/?$"), "bot_info"),
    ("GET", re.compile(r"^/open-apis/contact/v3/users/(?P<id>[^/]+)$"), "user"),
    ("POST", re.compile(r"^/callback/ws/endpoint$"), "ws_endpoint"),
]


@dataclass
class Call:
    operation: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict[str, Any]
    path_params: dict[str, str]


@dataclass
class SentCard:
    """A message the bot put in a chat, with every version of its content."""

    message_id: str
    chat_id: str
    msg_type: str
    uuid: str
    reply_to: str
    versions: list[str] = field(default_factory=list)

    @property
    def card(self) -> dict[str, Any]:
        return json.loads(self.versions[-1])

    @property
    def text(self) -> str:
        """The markdown the card shows now."""
        return "".join(
            element.get("content", "")
            for element in self.card.get("elements", [])
            if element.get("tag") == "markdown"
        )

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [
            action
            for element in self.card.get("elements", [])
            if element.get("tag") == "action"
            for action in element.get("actions", [])
        ]


class FakeFeishu(LoopbackServer):
    def __init__(self, *, app_id: str, app_secret: str, bot_open_id: str = "ou_bot_0001"):
        super().__init__()
        self.app_id = app_id
        self.app_secret = app_secret
        self.bot_open_id = bot_open_id
        self.calls: list[Call] = []
        self.faults: dict[str, list[Response]] = {}
        self.tokens: set[str] = set()
        self.token_numbers = itertools.count(1)
        self.message_numbers = itertools.count(1)
        self.messages: dict[str, SentCard] = {}
        self.by_uuid: dict[str, SentCard] = {}
        self.resources: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.ws_endpoint_answer: dict[str, Any] = {"code": 403, "msg": "long connection disabled"}
        self.users: dict[str, dict[str, str]] = {}  # open_id -> {"name": ..., "en_name": ...}
        self.state_lock = threading.Lock()

    # Test controls -------------------------------------------------------------------------
    def fail(
        self,
        operation: str,
        status: int,
        *,
        times: int = 1,
        code: int | None = None,
        reset: int | None = None,
    ) -> None:
        """Queue `times` failures of one operation (token/create/reply/patch/resource)."""
        headers: dict[str, str] = {}
        if status == 429:
            body: Any = {"code": 99991400, "msg": "request trigger frequency limit"}
            headers = {"x-ogw-ratelimit-limit": "5", "x-ogw-ratelimit-reset": str(reset or 1)}
        elif code is not None:
            body = {"code": code, "msg": f"injected error {code}"}
        else:
            body = b"<html>502 Bad Gateway</html>"
            headers = {"Content-Type": "text/html"}
        with self.lock:
            self.faults.setdefault(operation, []).extend([Response(status, body, headers)] * times)

    def calls_of(self, operation: str) -> list[Call]:
        with self.lock:
            return [call for call in self.calls if call.operation == operation]

    def cards(self) -> list[SentCard]:
        """Every message the bot put in a chat, in order."""
        with self.state_lock:
            return list(self.messages.values())

    def add_resource(self, message_id: str, file_key: str, data: bytes, content_type: str) -> None:
        self.resources[(message_id, file_key)] = (data, content_type)

    # Server ---------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path = urlsplit(request.path).path
        for method, pattern, name in ROUTES:
            match = pattern.match(path)
            if match and method == request.method:
                operation = name
                break
        else:
            return Response(404, {"code": 404, "msg": f"no route {request.method} {path}"})
        try:
            body = json.loads(request.body) if request.body else {}
        except ValueError:
            return Response(400, {"code": 9499, "msg": "bad json"})
        with self.lock:
            self.calls.append(
                Call(
                    operation,
                    request.method,
                    path,
                    request.query,
                    request.headers,
                    body,
                    match.groupdict(),
                )
            )
            queued = self.faults.get(operation)
            fault = queued.pop(0) if queued else None
        if fault is not None:
            return fault
        if operation == "token":
            return self.on_token(body)
        if operation == "ws_endpoint":
            return Response(200, self.ws_endpoint_answer)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return Response(
                400, {"code": 99991663, "msg": "Invalid access token for authorization"}
            )
        return getattr(self, f"on_{operation}")(request, body, match.groupdict())

    def on_token(self, body: dict[str, Any]) -> Response:
        if body.get("app_id") != self.app_id or body.get("app_secret") != self.app_secret:
            return Response(400, {"code": 10014, "msg": "app secret invalid"})
        token = f"t-fake-{next(self.token_numbers)}"
        with self.lock:
            self.tokens.add(token)
        return Response(200, {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": 7200})

    def _message_data(self, card: SentCard) -> dict[str, Any]:
        now = str(int(time.time() * 1000))
        return {
            "message_id": card.message_id,
            "parent_id": card.reply_to,
            "root_id": card.reply_to,
            "msg_type": card.msg_type,
            "create_time": now,
            "update_time": now,
            "chat_id": card.chat_id,
            "sender": {"id": "cli_fake", "id_type": "app_id", "sender_type": "app"},
            "body": {"content": card.versions[-1]},
        }

    def _put(self, *, chat_id: str, reply_to: str, body: dict[str, Any]) -> Response:
        content, msg_type, uuid = body.get("content"), body.get("msg_type"), body.get("uuid", "")
        if not isinstance(content, str) or not msg_type:
            return Response(400, {"code": 230001, "msg": "invalid content or msg_type"})
        if len(content.encode()) > 30 * 1024:
            return Response(400, {"code": 230025, "msg": "message content too long"})
        if len(uuid) > 50:
            return Response(400, {"code": 99992402, "msg": "uuid too long"})
        with self.state_lock:
            if uuid and uuid in self.by_uuid:  # one success per uuid: the same message again
                return Response(
                    200,
                    {"code": 0, "msg": "success", "data": self._message_data(self.by_uuid[uuid])},
                )
            card = SentCard(
                message_id=f"om_fake_{next(self.message_numbers)}",
                chat_id=chat_id,
                msg_type=msg_type,
                uuid=uuid,
                reply_to=reply_to,
                versions=[content],
            )
            self.messages[card.message_id] = card
            if uuid:
                self.by_uuid[uuid] = card
        return Response(200, {"code": 0, "msg": "success", "data": self._message_data(card)})

    def on_create(self, request: Request, body: dict[str, Any], params: dict[str, str]) -> Response:
        return self._put(chat_id=str(body.get("receive_id")), reply_to="", body=body)

    def on_reply(self, request: Request, body: dict[str, Any], params: dict[str, str]) -> Response:
        parent = params["id"]
        chat_id = self.messages[parent].chat_id if parent in self.messages else f"chat-of-{parent}"
        return self._put(chat_id=chat_id, reply_to=parent, body=body)

    def on_patch(self, request: Request, body: dict[str, Any], params: dict[str, str]) -> Response:
        with self.state_lock:
            card = self.messages.get(params["id"])
            if card is None:
                return Response(400, {"code": 230011, "msg": "message not found"})
            new = json.loads(body.get("content") or "{}")
            old = card.card
            if not (
                old.get("config", {}).get("update_multi")
                and new.get("config", {}).get("update_multi")
            ):
                return Response(400, {"code": 230099, "msg": "card is not update_multi"})
            card.versions.append(body["content"])
        return Response(200, {"code": 0, "msg": "success"})

    def on_resource(
        self, request: Request, body: dict[str, Any], params: dict[str, str]
    ) -> Response:
        found = self.resources.get((params["id"], params["key"]))
        if found is None:
            return Response(400, {"code": 234003, "msg": "file not found"})
        data, content_type = found
        return Response(200, data, {"Content-Type": content_type})

    def on_bot_info(
        self, request: Request, body: dict[str, Any], params: dict[str, str]
    ) -> Response:
        return Response(
            200,
            {"code": 0, "msg": "ok", "bot": {"app_name": "Assistant", "open_id": self.bot_open_id}},
        )

    def on_user(self, request: Request, body: dict[str, Any], params: dict[str, str]) -> Response:
        # https://open.feishu.cn/document/server-docs/contact-v3/user/get: the user under
        # data.user; 41050 "no user authority" for one outside the app's contact range.
        kind = request.query.get("user_id_type", ["open_id"])[0]
        user = self.users.get(params["id"]) if kind == "open_id" else None
        if user is None:
            return Response(400, {"code": 41050, "msg": "no user authority error"})
        return Response(
            200, {"code": 0, "msg": "success", "data": {"user": {"open_id": params["id"], **user}}}
        )


class FakeFeishuLongConnection:
    """The WebSocket side of Feishu's long connection, in lark-oapi's own protobuf frames.

    FakeFeishu's endpoint discovery (POST /callback/ws/endpoint) hands clients
    `endpoint_answer()`; the test then pushes events with `push()` and reads the
    clients' answers (and pings) from `frames`.
    """

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.connections: list[Any] = []
        self.frames: list[Frame] = []
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start():
            return await websockets.asyncio.server.serve(self._serve, "127.0.0.1", 0)

        self.server = self.loop.run_until_complete(start())
        self.port = self.server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()

    async def _serve(self, connection) -> None:
        self.connections.append(connection)
        try:
            async for data in connection:
                frame = Frame()
                frame.ParseFromString(data)
                self.frames.append(frame)
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            self.connections.remove(connection)

    def start(self) -> FakeFeishuLongConnection:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def close():
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def endpoint_answer(self) -> dict[str, Any]:
        return {
            "code": 0,
            "msg": "ok",
            "data": {
                "URL": f"ws://127.0.0.1:{self.port}/ws?device_id=fake-device&service_id=7",
                "ClientConfig": {
                    "ReconnectCount": -1,
                    "ReconnectInterval": 1,
                    "ReconnectNonce": 0,
                    "PingInterval": 120,
                },
            },
        }

    def push(
        self, payload: dict[str, Any], *, message_type: str = "event", connection: int = 0
    ) -> str:
        """Send an event frame to a connected client; returns the frame's message id."""
        message_id = f"msg-{next(_frame_numbers)}"
        frame = Frame()
        for key, value in (
            ("type", message_type),
            ("message_id", message_id),
            ("trace_id", f"trace-{message_id}"),
            ("sum", "1"),
            ("seq", "0"),
        ):
            header = frame.headers.add()
            header.key, header.value = key, value
        frame.service = 7
        frame.method = 1  # DATA
        frame.SeqID = 0
        frame.LogID = 0
        frame.payload = json.dumps(payload).encode()
        client = self.connections[connection]
        asyncio.run_coroutine_threadsafe(client.send(frame.SerializeToString()), self.loop).result(
            10
        )
        return message_id

    def answer_to(self, message_id: str) -> dict[str, Any] | None:
        """The client's answer frame for a pushed event: {"code", "data" (decoded JSON)}."""
        for frame in list(self.frames):
            headers = {header.key: header.value for header in frame.headers}
            if headers.get("message_id") == message_id and frame.method == 1:
                answer = json.loads(frame.payload)
                data = answer.get("data")
                answer["data"] = json.loads(base64.b64decode(data)) if data else None
                return answer
        return None
