"""A loopback fake of the Telegram Bot API (the subset the platform uses).

Speaks the real wire format: form-encoded or JSON parameters in, {"ok": ...} out.
It keeps the chat as a user would see it: `messages` holds each sent message's
rendered text (HTML parsed the way Telegram does; bad markup is a 400 "can't parse
entities") and keyboard; an edit to identical content is a 400 "message is not modified".

Faults can be queued per method: `fail("sendMessage", 429, retry_after=1)`.
Long polling: `push_update(update)` queues updates; getUpdates returns them until a
later offset confirms them, waits up to `timeout` when there are none, and
`stall_polls(n)` makes the next n polls hang without answering.
"""

from __future__ import annotations

import html
import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import LoopbackServer, Request, Response

PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>\w+)")
TOKEN = re.compile(r"^\d+:[\w-]+$")
FILE_PATH = re.compile(r"^/file/bot(?P<token>[^/]+)/(?P<path>.+)$")
HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a"}
HTML_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(?:\s[^<>]*)?>")
HTML_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


def render_html(text: str) -> str:
    """The text a user sees for an HTML-mode message; ValueError where Telegram refuses."""
    out: list[str] = []
    open_tags: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "<":
            match = HTML_TAG.match(text, index)
            if match is None or match[2].lower() not in HTML_TAGS:
                raise ValueError(f"Unsupported start tag at byte offset {index}")
            if match[1]:
                if not open_tags or open_tags.pop() != match[2].lower():
                    raise ValueError(f"Unmatched end tag at byte offset {index}")
            else:
                open_tags.append(match[2].lower())
            index = match.end()
            continue
        if char == "&":
            match = HTML_ENTITY.match(text, index)
            if match is None:
                raise ValueError(f"Unexpected end of name token at byte offset {index}")
            out.append(html.unescape(match[0]))
            index = match.end()
            continue
        out.append(char)
        index += 1
    if open_tags:
        raise ValueError(f"Can't find end tag corresponding to start tag {open_tags[-1]}")
    return "".join(out)


@dataclass
class Call:
    token: str
    method: str
    params: dict[str, Any]
    status: int = 200  # what the fake answered
    started: float = 0.0  # time.monotonic() when the call arrived
    finished: float = 0.0  # ... and when its answer was ready (after any delay)


@dataclass
class ChatMessage:
    """One message in a chat as the user sees it."""

    chat_id: int
    message_id: int
    text: str
    reply_markup: Any = None
    reply_to: int | None = None
    edits: list[str] = field(default_factory=list)


class FakeTelegram(LoopbackServer):
    def __init__(self, bot_username: str = "assistant_test_bot", bot_id: int = 123456):
        super().__init__()
        self.bot_username = bot_username
        self.bot_id = bot_id  # the test token is "123456:TEST-token"
        self.calls: list[Call] = []
        self.faults: dict[str, list[Response]] = {}
        self.message_ids = itertools.count(1000)
        self.webhook: dict[str, Any] = {}
        self.messages: dict[tuple[int, int], ChatMessage] = {}
        self.files: dict[str, tuple[str, bytes]] = {}
        self.commands: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.updates_changed = threading.Condition()
        self.stalls = 0
        self.unstall = threading.Event()
        self.delays: dict[str, float] = {}  # method -> seconds each call takes (a slow API)
        # Like Telegram: a token not shaped "<bot id>:<secret>" is 404 Not Found; when
        # `valid_tokens` is set, any other well-formed token is 401 Unauthorized.
        self.valid_tokens: set[str] | None = None

    # Test controls -------------------------------------------------------
    def fail(
        self,
        method: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        description: str = "Internal Server Error",
    ) -> None:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["description"] = f"Too Many Requests: retry after {retry_after}"
            body["parameters"] = {"retry_after": retry_after}
        if migrate_to_chat_id is not None:
            body["description"] = "Bad Request: group chat was upgraded to a supergroup chat"
            body["parameters"] = {"migrate_to_chat_id": migrate_to_chat_id}
        with self.lock:
            self.faults.setdefault(method, []).extend([Response(status, body)] * times)

    def sent(self, method: str = "sendMessage", *, ok_only: bool = False) -> list[Call]:
        with self.lock:
            return [
                call
                for call in self.calls
                if call.method == method and (not ok_only or call.status == 200)
            ]

    def chat(self, chat_id: int) -> list[ChatMessage]:
        """The messages in a chat, in the order they were sent."""
        with self.lock:
            return [m for (chat, _), m in sorted(self.messages.items()) if chat == int(chat_id)]

    def put_message(self, chat_id: int, text: str) -> int:
        """A message the bot sent earlier (e.g. by a worker that died since); its id."""
        message = ChatMessage(chat_id=chat_id, message_id=next(self.message_ids), text=text)
        with self.lock:
            self.messages[(chat_id, message.message_id)] = message
        return message.message_id

    def add_file(self, file_id: str, content: bytes, path: str) -> None:
        self.files[file_id] = (path, content)

    def push_update(self, update: dict[str, Any]) -> None:
        with self.updates_changed:
            self.updates.append(update)
            self.updates_changed.notify_all()

    def stall_polls(self, times: int = 1) -> None:
        with self.updates_changed:
            self.stalls += times

    def stop(self):
        self.unstall.set()
        with self.updates_changed:
            self.updates_changed.notify_all()
        super().stop()

    # Server --------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        file_match = FILE_PATH.match(request.path)
        if file_match:
            for path, content in self.files.values():
                if path == file_match["path"]:
                    return Response(200, content, {"Content-Type": "application/octet-stream"})
            return Response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        match = PATH.match(request.path)
        if not match:
            return Response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        method, params = match["method"], request.form_or_json()
        call = Call(match["token"], method, params, started=time.monotonic())
        if self.delays.get(method):
            time.sleep(self.delays[method])
        try:
            return self._answer(call)
        finally:
            call.finished = time.monotonic()

    def _answer(self, call: Call) -> Response:
        method, params = call.method, call.params
        with self.lock:
            queued = self.faults.get(method)
            fault = queued.pop(0) if queued else None
            self.calls.append(call)
        if not TOKEN.match(call.token):
            call.status = 404
            return Response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        if self.valid_tokens is not None and call.token not in self.valid_tokens:
            call.status = 401
            return Response(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        if fault is not None:
            call.status = fault.status
            return fault
        handler = getattr(self, f"on_{method}", None)
        if handler is None:
            return Response(200, {"ok": True, "result": True})
        try:
            result = handler(params)
        except _ApiError as error:
            call.status = error.status
            return Response(
                error.status,
                {"ok": False, "error_code": error.status, "description": error.description},
            )
        return Response(200, {"ok": True, "result": result})

    def _user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Assistant",
            "username": self.bot_username,
        }

    def _rendered(self, params) -> str:
        text = params.get("text", "")
        if params.get("parse_mode") == "HTML":
            try:
                text = render_html(text)
            except ValueError as error:
                raise _ApiError(400, f"Bad Request: can't parse entities: {error}") from None
        elif params.get("parse_mode"):
            raise _ApiError(400, "Bad Request: unsupported parse_mode in this fake")
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        return text

    def _message_json(self, message: ChatMessage) -> dict[str, Any]:
        payload = {
            "message_id": message.message_id,
            "date": int(time.time()),
            "chat": {"id": message.chat_id, "type": "private" if message.chat_id > 0 else "group"},
            "from": self._user(),
            "text": message.text,
        }
        if message.reply_markup:
            payload["reply_markup"] = message.reply_markup
        return payload

    def on_getMe(self, params):
        return self._user()

    def on_sendMessage(self, params):
        text = self._rendered(params)
        reply = params.get("reply_parameters") or {}
        message = ChatMessage(
            chat_id=int(params["chat_id"]),
            message_id=next(self.message_ids),
            text=text,
            reply_markup=params.get("reply_markup"),
            reply_to=reply.get("message_id"),
        )
        with self.lock:
            self.messages[(message.chat_id, message.message_id)] = message
        return self._message_json(message)

    def on_editMessageText(self, params):
        text = self._rendered(params)
        key = (int(params["chat_id"]), int(params["message_id"]))
        with self.lock:
            message = self.messages.get(key)
            if message is None:
                raise _ApiError(400, "Bad Request: message to edit not found")
            markup = params.get("reply_markup")
            if message.text == text and message.reply_markup == markup:
                raise _ApiError(
                    400,
                    "Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup "
                    "of the message",
                )
            message.edits.append(text)
            message.text = text
            message.reply_markup = markup
        return self._message_json(message)

    def on_editMessageReplyMarkup(self, params):
        key = (int(params["chat_id"]), int(params["message_id"]))
        with self.lock:
            message = self.messages.get(key)
            if message is None:
                raise _ApiError(400, "Bad Request: message to edit not found")
            markup = params.get("reply_markup")
            if message.reply_markup == markup:
                raise _ApiError(400, "Bad Request: message is not modified")
            message.reply_markup = markup
        return self._message_json(message)

    def on_getFile(self, params):
        file_id = params["file_id"]
        if file_id not in self.files:
            raise _ApiError(400, "Bad Request: invalid file_id")
        path, content = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(content),
            "file_path": path,
        }

    def on_setWebhook(self, params):
        self.webhook = params
        return True

    def on_deleteWebhook(self, params):
        self.webhook = {}
        return True

    def on_setMyCommands(self, params):
        self.commands = params.get("commands") or []
        return True

    def on_getUpdates(self, params):
        if self.webhook.get("url"):
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        with self.updates_changed:
            stalled = self.stalls > 0
            if stalled:
                self.stalls -= 1
        if stalled:
            # Hang like a dead connection; the client must give up on its own.
            self.unstall.wait(120)
            return []
        offset = params.get("offset")
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + timeout
        with self.updates_changed:
            if offset is not None:
                # Like Telegram: an offset confirms every update before it.
                self.updates = [u for u in self.updates if u["update_id"] >= int(offset)]
            while not self.updates and not self.unstall.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.updates_changed.wait(remaining)
            return list(self.updates[:limit])


class _ApiError(Exception):
    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status = status
        self.description = description
