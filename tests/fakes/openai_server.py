"""A loopback fake of an OpenAI-compatible model server (/v1/chat/completions, streaming).

Tests script it: `reply` is what it streams, split into `chunks`; `fail(status)`
queues failures; `first_token_delay` holds the first token back.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.fakes.server import LoopbackServer, Request, Response


class FakeOpenAI(LoopbackServer):
    def __init__(self, reply: str = "Hello from the fake model.", chunk_size: int = 4):
        super().__init__()
        self.reply = reply
        self.chunk_size = chunk_size
        self.first_token_delay = 0.0
        self.chunk_delay = 0.0  # seconds between streamed chunks (a slow model)
        self.report_usage = True
        self.requests: list[dict[str, Any]] = []
        self.failures: list[int] = []

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def fail(self, status: int, times: int = 1) -> None:
        with self.lock:
            self.failures.extend([status] * times)

    def handle(self, request: Request) -> Response:
        if request.path.rstrip("/").endswith("/models"):
            return Response(
                200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}
            )
        if not request.path.endswith("/chat/completions"):
            return Response(404, {"error": {"message": "not found"}})
        body = json.loads(request.body)
        with self.lock:
            self.requests.append(body)
            status = self.failures.pop(0) if self.failures else None
        if status is not None:
            return Response(status, {"error": {"message": f"injected {status}", "type": "fake"}})
        reply = self.reply
        pieces = [reply[i : i + self.chunk_size] for i in range(0, len(reply), self.chunk_size)]
        usage = {
            "prompt_tokens": 11,
            "completion_tokens": len(pieces),
            "total_tokens": 11 + len(pieces),
        }
        if not body.get("stream"):
            return Response(
                200,
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": reply},
                        }
                    ],
                    "usage": usage,
                },
            )
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        delay = self.first_token_delay
        chunk_delay = self.chunk_delay

        def stream(write):
            def event(payload):
                write(f"data: {json.dumps(payload)}\n\n".encode())

            base = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body["model"],
            }
            if delay:
                time.sleep(delay)
            event(
                {
                    **base,
                    "choices": [
                        {"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}
                    ],
                }
            )
            for piece in pieces:
                if chunk_delay:
                    time.sleep(chunk_delay)
                event(
                    {
                        **base,
                        "choices": [
                            {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                        ],
                    }
                )
            event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if include_usage and self.report_usage:
                event({**base, "choices": [], "usage": usage})
            write(b"data: [DONE]\n\n")

        return Response(200, headers={"Content-Type": "text/event-stream"}, stream=stream)
