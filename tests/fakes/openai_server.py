"""A loopback fake of an OpenAI-compatible model server (/v1/chat/completions, streaming).

Tests script it: `reply` is what it streams, split into chunks of `chunk_size`
(or `reply_for(body)` decides per request); `fail(status, retry_after=...)` queues
failures; `first_token_delay` holds the first token back; `hold()` holds every stream's first
token until `release()` (a test that must see what happens before any answer); `chunk_delay` paces
every chunk; `stall_after_chunks` stops the stream mid-answer for `stall_seconds`;
`report_usage` turns the final usage chunk on/off; `context_limit` answers 400
context_length_exceeded when the prompt is longer (estimated tokens);
/audio/transcriptions answers `transcript`.

Tool calls: a request that offers `tools` (and no `tool_choice: "none"`) takes the next
step of `tool_plan`: a list of calls `{"name": ..., "arguments": {...}}` (name None: the
first tool offered), `{"calls": [...], "text": "..."}` (text streamed before the calls),
`{"fail": status}` (this request fails), or None (answer with text). Calls are streamed as
OpenAI streams them. A request carrying `role: tool` results is answered with
`tool_reply` filled with them (`{results}`), so tests see that the results reached the model.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
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
        self.request_headers: list[dict[str, str]] = []  # of chat completions, lower-cased
        self.request_times: list[float] = []
        self.failures: list[tuple[int, float | None]] = []
        self.reply_for: Callable[[dict[str, Any]], str | None] | None = None
        self.stall_after_chunks: int | None = None
        self.stall_seconds = 30.0
        self.context_limit: int | None = None
        self.transcript = "transcribed words"
        self.transcriptions: list[dict[str, Any]] = []
        self._released = threading.Event()
        self._open = threading.Event()  # cleared by hold(): streams wait before their text
        self._open.set()
        self.in_flight = 0
        self.max_in_flight = 0  # the most chat streams served at the same time
        self.api_keys: set[str] | None = None  # when set, any other key is 401 (as OpenAI)
        self.model_list_requests: list[dict[str, str]] = []  # headers of GET /models calls
        self.tool_plan: list[Any] = []  # steps for requests that offer tools (see above)
        self.tool_reply = "Done: {results}"
        self._calls_made = 0

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def fail(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        with self.lock:
            self.failures.extend([(status, retry_after)] * times)

    def hold(self) -> None:
        """Streams started from now on send no text until `release()` (at most 60 s)."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def stop(self):
        self._released.set()  # wake any stalled stream so its thread ends
        self._open.set()
        super().stop()

    def chat_requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.requests)

    @staticmethod
    def prompt_tokens(body: dict[str, Any]) -> int:
        """The fake's own estimate of a prompt's size: four characters a token."""
        total = 0
        for message in body.get("messages", []):
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(part.get("text", "") for part in content)
            total += len(content or "") // 4 + 4
        return total

    def _transcription(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        fields: dict[str, Any] = {}
        boundary = content_type.split("boundary=")[-1].encode()
        for part in request.body.split(b"--" + boundary):
            head, _, value = part.partition(b"\r\n\r\n")
            if b'name="model"' in head:
                fields["model"] = value.rstrip(b"\r\n").decode()
            elif b'name="file"' in head:
                fields["file"] = value[:-2] if value.endswith(b"\r\n") else value
        with self.lock:
            self.transcriptions.append(fields)
        return Response(200, {"text": self.transcript})

    def handle(self, request: Request) -> Response:
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_keys is not None and key not in self.api_keys:
            return Response(
                401,
                {
                    "error": {
                        "message": "Incorrect API key provided.",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
            )
        if request.path.rstrip("/").endswith("/v1/models"):
            with self.lock:
                self.model_list_requests.append(dict(request.headers))
            return Response(
                200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}
            )
        if request.path.endswith("/audio/transcriptions"):
            return self._transcription(request)
        if not request.path.endswith("/chat/completions"):
            return Response(404, {"error": {"message": "not found"}})
        body = json.loads(request.body)
        with self.lock:
            self.requests.append(body)
            self.request_headers.append(dict(request.headers))
            self.request_times.append(time.monotonic())
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            status, retry_after = failure
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            return Response(
                status, {"error": {"message": f"injected {status}", "type": "fake"}}, headers
            )
        if self.context_limit is not None and self.prompt_tokens(body) > self.context_limit:
            return Response(
                400,
                {
                    "error": {
                        "message": "This model's maximum context length is "
                        f"{self.context_limit} tokens.",
                        "type": "invalid_request_error",
                        "code": "context_length_exceeded",
                    }
                },
            )
        step = self._tool_step(body)
        if isinstance(step, dict) and "fail" in step:
            status = step["fail"]
            return Response(status, {"error": {"message": f"injected {status}", "type": "fake"}})
        calls = self._tool_calls(step, body)
        if calls:
            reply = step.get("text", "") if isinstance(step, dict) else ""
        else:
            reply = (self.reply_for(body) if self.reply_for else None) or self._after_tools(body)
        pieces = [reply[i : i + self.chunk_size] for i in range(0, len(reply), self.chunk_size)]
        deltas: list[dict[str, Any]] = [{"content": piece} for piece in pieces]
        deltas += self._tool_call_deltas(calls)
        usage = {
            "prompt_tokens": 11,
            "completion_tokens": len(deltas),
            "total_tokens": 11 + len(deltas),
        }
        finish_reason = "tool_calls" if calls else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": reply or None}
            if calls:
                message["tool_calls"] = calls
            return Response(
                200,
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
                    "usage": usage,
                },
            )
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        delay = self.first_token_delay
        chunk_delay = self.chunk_delay
        stall_after = self.stall_after_chunks
        stall_seconds = self.stall_seconds
        released = self._released
        gate = self._open

        def stream(write):
            with self.lock:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                produce(write)
            finally:
                with self.lock:
                    self.in_flight -= 1

        def produce(write):
            def event(payload):
                write(f"data: {json.dumps(payload)}\n\n".encode())

            base = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body["model"],
            }
            event(
                {
                    **base,
                    "choices": [
                        {"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}
                    ],
                }
            )
            gate.wait(60)
            if delay:
                released.wait(delay)
            for index, delta in enumerate(deltas):
                if stall_after is not None and index == stall_after:
                    released.wait(stall_seconds)
                    return  # the connection just ends: a stalled, then broken, stream
                if chunk_delay:
                    released.wait(chunk_delay)
                event({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
            event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]})
            if include_usage and self.report_usage:
                event({**base, "choices": [], "usage": usage})
            write(b"data: [DONE]\n\n")

        return Response(200, headers={"Content-Type": "text/event-stream"}, stream=stream)

    # Tool calls ----------------------------------------------------------------------

    def _tool_step(self, body: dict[str, Any]) -> Any:
        """The plan's next step when the request offers tools it may call, else None."""
        if not body.get("tools") or body.get("tool_choice") == "none":
            return None
        with self.lock:
            return self.tool_plan.pop(0) if self.tool_plan else None

    def _tool_calls(self, step: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The step's calls in the shape of a whole message's `tool_calls`."""
        planned = step.get("calls", []) if isinstance(step, dict) else (step or [])
        first = body["tools"][0]["function"]["name"] if body.get("tools") else ""
        calls = []
        for call in planned:
            arguments = call.get("arguments", {})
            with self.lock:
                self._calls_made += 1
                number = self._calls_made
            calls.append(
                {
                    "id": f"call_fake{number}",
                    "type": "function",
                    "function": {
                        "name": call.get("name") or first,
                        "arguments": arguments
                        if isinstance(arguments, str)
                        else json.dumps(arguments, ensure_ascii=False),
                    },
                }
            )
        return calls

    def _tool_call_deltas(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Calls as OpenAI streams them (API reference, "The chat completion chunk object",
        choices[].delta.tool_calls; guide "Function calling", "Streaming"): per call, a first
        delta with its index, id, type and function name (arguments ""), then deltas with
        the same index carrying further pieces of `function.arguments`, a JSON text cut
        anywhere; the last chunk's finish_reason is "tool_calls"."""
        deltas: list[dict[str, Any]] = []
        for index, call in enumerate(calls):
            function = call["function"]
            opening = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": function["name"], "arguments": ""},
            }
            deltas.append({"tool_calls": [opening]})
            arguments = function["arguments"]
            for start in range(0, len(arguments), self.chunk_size):
                piece = arguments[start : start + self.chunk_size]
                deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        return deltas

    def _after_tools(self, body: dict[str, Any]) -> str:
        """`tool_reply` filled with the request's tool results, or `reply` when it has none."""
        results = [
            str(message.get("content") or "")
            for message in body.get("messages", [])
            if message.get("role") == "tool"
        ]
        return self.tool_reply.format(results=" | ".join(results)) if results else self.reply
