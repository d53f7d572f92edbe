"""Model streams as providers write them, byte for byte, read by the platform's stream reader.

The event format is the WHATWG HTML standard's "9.2 Server-sent events" (`data:` fields,
joined with newlines; an empty line ends an event; `:` starts a comment; CR LF, LF or CR
end lines); the chunks are the OpenAI API reference's "chat completion chunk object",
ended by `data: [DONE]`. OpenRouter's "API Reference: Streaming" documents
`: OPENROUTER PROCESSING` comments as keep-alives, and errors during generation as
`data:` events with an `error` field.
"""

from __future__ import annotations

import json

import pytest

from apps.providers.client import ChatMessage, ModelError, stream_reply
from tests.factories import make_profile, make_provider
from tests.fakes.server import LoopbackServer, Response


def chunk(content: str) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }


class RawStream(LoopbackServer):
    """Answers every chat request with the given bytes, written in the given pieces."""

    def __init__(self, pieces: list[bytes], status: int = 200, headers: dict | None = None):
        super().__init__()
        self.pieces = pieces
        self.status = status
        self.headers = headers or {"Content-Type": "text/event-stream"}
        self.bodies: list[dict] = []
        self.request_headers: list[dict] = []

    def handle(self, request):
        self.bodies.append(json.loads(request.body))
        self.request_headers.append(request.headers)
        if self.status >= 400:
            return Response(self.status, b"".join(self.pieces), headers=self.headers)

        def stream(write):
            for piece in self.pieces:
                write(piece)

        return Response(self.status, headers=self.headers, stream=stream)


@pytest.fixture
def raw_stream():
    servers: list[RawStream] = []

    def serve(pieces: list[bytes], **kwargs) -> RawStream:
        server = RawStream(pieces, **kwargs).start()
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.stop()


def ask(server: RawStream, **provider):
    profile = make_profile(
        provider=make_provider(base_url=f"{server.url}/v1", max_retries=0, **provider)
    )
    deltas: list[str] = []
    reply = stream_reply(
        profile=profile, messages=[ChatMessage("user", "hi")], on_delta=deltas.append
    )
    return reply, deltas


def event(payload: dict, end: bytes = b"\n") -> bytes:
    return b"data: " + json.dumps(payload).encode() + end + end


def test_events_split_anywhere_with_comments_and_any_line_ending(raw_stream, db):
    body = (
        b": OPENROUTER PROCESSING\n\n"
        + event(chunk("Hel"))
        + event(chunk("lo, "), end=b"\r\n")
        + b"event: message\ndata: "
        + json.dumps(chunk("wor")).encode()
        + b"\n\n"
        + event({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}})
        + event(chunk("ld"))
        + b"data: [DONE]\n\n"
    )
    # Written three bytes at a time: lines and events cross every boundary.
    server = raw_stream([body[i : i + 3] for i in range(0, len(body), 3)])

    reply, deltas = ask(server, api_key="sk-test", extra_headers={"X-Team": "ops"})

    assert reply.text == "Hello, world" and deltas == ["Hel", "lo, ", "wor", "ld"]
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (7, 3)
    assert not reply.usage.estimated
    sent = server.bodies[0]
    assert sent["stream"] is True and sent["messages"][-1] == {"role": "user", "content": "hi"}
    assert sent["stream_options"] == {"include_usage": True}
    headers = server.request_headers[0]
    assert headers["authorization"] == "Bearer sk-test" and headers["x-team"] == "ops"
    assert headers["content-type"] == "application/json"


def test_a_data_line_longer_than_any_buffer_and_a_stream_ending_without_done(raw_stream, db):
    long_text = "长" * 100_000  # 300 KB of UTF-8 in one line, characters split by the writes
    body = (
        b"data: "
        + json.dumps(chunk(long_text), ensure_ascii=False).encode()
        + b"\n\n"
        # Cut off in the middle of an event: the standard says it is not dispatched.
        + b"data: "
        + json.dumps(chunk("!")).encode()
        + b"\n"
    )
    server = raw_stream([body[i : i + 4096] for i in range(0, len(body), 4096)])

    reply, _ = ask(server)

    assert reply.text == long_text


def test_multi_line_data_is_one_event(raw_stream, db):
    text = json.dumps(chunk("one event"), indent=1)  # JSON over several lines
    body = "".join(f"data: {line}\n" for line in text.splitlines()).encode() + b"\ndata: [DONE]\n\n"
    server = raw_stream([body])

    reply, _ = ask(server)

    assert reply.text == "one event"


def test_an_error_event_in_the_stream_fails_the_call(raw_stream, db):
    body = event({"error": {"message": "model overloaded", "type": "server_error"}})
    server = raw_stream([body])

    with pytest.raises(ModelError) as raised:
        ask(server)

    assert "model overloaded" in str(raised.value) and raised.value.kind == "bad_request"


def test_an_http_error_with_a_text_body_says_what_the_server_said(raw_stream, db):
    server = raw_stream(
        [b"upstream connect error"], status=503, headers={"Content-Type": "text/plain"}
    )

    with pytest.raises(ModelError) as raised:
        ask(server)

    assert raised.value.kind == "server_error" and raised.value.status == 503
    assert "upstream connect error" in str(raised.value)


def test_an_http_error_with_retry_after_ms(raw_stream, db):
    server = raw_stream(
        [json.dumps({"error": {"message": "slow down", "code": "rate_limit"}}).encode()],
        status=429,
        headers={"Content-Type": "application/json", "retry-after-ms": "1500"},
    )

    with pytest.raises(ModelError) as raised:
        ask(server)

    assert raised.value.kind == "rate_limited" and raised.value.retry_after == 1.5
    assert "slow down" in str(raised.value)
