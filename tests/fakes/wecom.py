"""A loopback fake of the WeCom (企业微信) server API the platform uses.

Speaks the real wire format: GET /cgi-bin/gettoken (获取access_token), POST
/cgi-bin/message/send (发送应用消息), GET /cgi-bin/media/get (获取临时素材). Tokens
expire when told (`expire_tokens()`); faults queue per operation: `fail("send", 45009)`.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from tests.fakes.server import LoopbackServer, Request, Response

ROUTES = {
    ("GET", "/cgi-bin/gettoken"): "token",
    ("POST", "/cgi-bin/message/send"): "send",
    ("GET", "/cgi-bin/media/get"): "media",
}


@dataclass
class Call:
    operation: str
    query: dict[str, str]
    body: dict[str, Any]


class FakeWeCom(LoopbackServer):
    corp_id = "ww-test-corp"
    secret = "wecom-app-secret"  # noqa: S105

    def __init__(self):
        super().__init__()
        self.calls: list[Call] = []
        self.sent: list[dict[str, Any]] = []
        self.media: dict[str, bytes] = {}
        self.valid_tokens: set[str] = set()
        self.faults: dict[str, list[int]] = {}
        self._tokens = itertools.count(1)
        self._messages = itertools.count(1)

    def fail(self, operation: str, errcode: int, times: int = 1) -> None:
        self.faults.setdefault(operation, []).extend([errcode] * times)

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def calls_of(self, operation: str) -> list[Call]:
        return [call for call in self.calls if call.operation == operation]

    def handle(self, request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        operation = ROUTES.get((request.method, path))
        query = {key: values[-1] for key, values in request.query.items()}
        body = json.loads(request.body) if request.body else {}
        with self.lock:
            self.calls.append(Call(operation or "unknown", query, body))
            if operation is None:
                return Response(404, {"errcode": 404, "errmsg": "no such api"})
            faults = self.faults.get(operation)
            if faults:
                code = faults.pop(0)
                return Response(200, {"errcode": code, "errmsg": "fault injected"})
            if operation == "token":
                if (query.get("corpid"), query.get("corpsecret")) != (self.corp_id, self.secret):
                    return Response(200, {"errcode": 40001, "errmsg": "invalid credential"})
                token = f"wecom-token-{next(self._tokens)}"
                self.valid_tokens.add(token)
                return Response(
                    200,
                    {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200},
                )
            if query.get("access_token") not in self.valid_tokens:
                return Response(200, {"errcode": 42001, "errmsg": "access_token expired"})
            if operation == "send":
                self.sent.append(body)
                return Response(
                    200,
                    {
                        "errcode": 0,
                        "errmsg": "ok",
                        "invaliduser": "",
                        "msgid": f"msg-{next(self._messages)}",
                    },
                )
            data = self.media.get(query.get("media_id", ""))
            if data is None:
                return Response(200, {"errcode": 40007, "errmsg": "invalid media_id"})
            return Response(200, data, headers={"Content-Type": "image/jpeg"})

    def texts(self) -> list[str]:
        return [message["text"]["content"] for message in self.sent]
