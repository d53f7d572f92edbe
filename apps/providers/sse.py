"""A chat completion's stream, read straight off the HTTP response (aiohttp).

The answering path's one model call per turn, made without the `openai` SDK's request
and response layers, which cost 2.6 ms of CPU per stream through
`chat.completions.create()` and 1.5 ms through `client.post()` with plain chunks,
against 0.9 ms here (`bench/transport_cost.py`: 400 streams of 13 chunks,
`time.process_time()`, 2026-11-24). What the SDK did and still matters is done here:
the request as the OpenAI API reference's "Create chat completion" documents it (JSON
body, `Authorization: Bearer`), server-sent events as the WHATWG HTML standard defines them
("9.2 Server-sent events": `data:` lines, joined with newlines, an empty line ends an
event, lines starting with `:` are comments), `data: [DONE]` ending the stream, and an
`{"error": ...}` event or an HTTP error status reported with what the server said.
Time-outs are the caller's (apps.providers.client: first token, stall): the socket has
none once connected, so a long answer is never cut by a read timer either.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

USER_AGENT = "assistant-platform"


class HTTPStatusError(Exception):
    """The provider answered the request with an HTTP error status."""

    def __init__(self, status: int, headers: Mapping[str, str], body: Any, message: str):
        super().__init__(message)
        self.status = status
        self.headers = headers
        self.body = body  # the parsed JSON's `error` member (or the whole JSON, or the text)
        self.message = message


class StreamError(Exception):
    """The stream itself reported an error (an event whose JSON has `error`)."""


def new_session(*, connect_timeout: float) -> aiohttp.ClientSession:
    """A long-lived session (one connection pool) for one provider's streams."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
        timeout=aiohttp.ClientTimeout(total=None, connect=connect_timeout),
        headers={"User-Agent": USER_AGENT},
    )


def request_headers(api_key: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {api_key or 'not-needed'}",
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
    }
    headers.update(extra or {})  # an operator's headers win (e.g. their own Authorization)
    return headers


async def chat_chunks(
    session: aiohttp.ClientSession, url: str, headers: Mapping[str, str], body: dict[str, Any]
) -> AsyncIterator[Any]:
    """The parsed JSON of each event of a streamed chat completion, until `[DONE]`.

    Raises HTTPStatusError, StreamError, or aiohttp's errors (connection, payload).
    """
    async with session.post(url, data=json.dumps(body), headers=headers) as response:
        if response.status >= 400:
            raise _http_error(response.status, response.headers, await response.read())
        async for data in _events(response.content):
            if data.startswith("[DONE]"):
                return
            try:
                chunk = json.loads(data)
            except ValueError:
                continue  # not JSON (a provider's keep-alive text): nothing to read
            if isinstance(chunk, dict) and chunk.get("error"):
                error = chunk["error"]
                message = error.get("message") if isinstance(error, dict) else None
                raise StreamError(
                    message if isinstance(message, str) and message else "stream error"
                )
            yield chunk


def _http_error(status: int, headers: Mapping[str, str], raw: bytes) -> HTTPStatusError:
    """As the SDK words it: "Error code: 429 - {'error': {...}}" (or the body's text)."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = text
        message = text or f"Error code: {status}"
    else:
        message = f"Error code: {status} - {body}"
    if isinstance(body, dict):
        body = body.get("error", body)
    return HTTPStatusError(status, headers, body, message)


async def _events(content: aiohttp.StreamReader) -> AsyncIterator[str]:
    """The data of each server-sent event (lines of any length: read as they arrive)."""
    data: list[str] = []
    pending = b""
    async for block in content.iter_any():
        pending += block
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r").decode("utf-8", "replace")
            if not line:  # the end of an event
                if data:
                    yield "\n".join(data)
                    data = []
                continue
            if line.startswith(":"):
                continue  # a comment (keep-alive)
            name, _, value = line.partition(":")
            if name == "data":
                data.append(value[1:] if value.startswith(" ") else value)
    # An event the stream ended in the middle of is not dispatched (the standard; the SDK too).
