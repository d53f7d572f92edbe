"""A loopback fake of the Telegram Bot API (the subset the platform uses).

Speaks the real wire format: form-encoded or JSON parameters in, {"ok": ...} out.
Faults can be queued per method: `fail("sendMessage", 429, retry_after=1)`.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass
from typing import Any

from tests.fakes.server import LoopbackServer, Request, Response

PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>\w+)")


@dataclass
class Call:
    token: str
    method: str
    params: dict[str, Any]


class FakeTelegram(LoopbackServer):
    def __init__(self, bot_username: str = "assistant_test_bot", bot_id: int = 777000):
        super().__init__()
        self.bot_username = bot_username
        self.bot_id = bot_id
        self.calls: list[Call] = []
        self.faults: dict[str, list[Response]] = {}
        self.message_ids = itertools.count(1000)
        self.webhook: dict[str, Any] = {}

    # Test controls -------------------------------------------------------
    def fail(
        self,
        method: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        description: str = "Internal Server Error",
    ) -> None:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["description"] = f"Too Many Requests: retry after {retry_after}"
            body["parameters"] = {"retry_after": retry_after}
        with self.lock:
            self.faults.setdefault(method, []).extend([Response(status, body)] * times)

    def sent(self, method: str = "sendMessage") -> list[Call]:
        with self.lock:
            return [call for call in self.calls if call.method == method]

    # Server --------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        match = PATH.match(request.path)
        if not match:
            return Response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        method, params = match["method"], request.form_or_json()
        with self.lock:
            queued = self.faults.get(method)
            fault = queued.pop(0) if queued else None
            self.calls.append(Call(match["token"], method, params))
        if fault is not None:
            return fault
        handler = getattr(self, f"on_{method}", None)
        if handler is None:
            return Response(200, {"ok": True, "result": True})
        return Response(200, {"ok": True, "result": handler(params)})

    def _user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Assistant",
            "username": self.bot_username,
        }

    def on_getMe(self, params):
        return self._user()

    def on_sendMessage(self, params):
        return {
            "message_id": next(self.message_ids),
            "date": int(time.time()),
            "chat": {"id": int(params["chat_id"]), "type": "private"},
            "from": self._user(),
            "text": params.get("text", ""),
        }

    def on_setWebhook(self, params):
        self.webhook = params
        return True
