"""Loopback fakes for the benchmark, one process each (aiohttp, so they are not the
bottleneck): an OpenAI-compatible streaming model and the Telegram Bot API.

    python bench/fakes.py model PORT FIRST_TOKEN_SECONDS TOTAL_SECONDS CHUNKS
    python bench/fakes.py telegram PORT CHUNKS

The model answers a last user message "u<id>" with "answer to u<id> w1 ... wN" in CHUNKS
content chunks: a role chunk at once, the first content chunk after FIRST_TOKEN_SECONDS,
the last at TOTAL_SECONDS, evenly spaced, then finish_reason, the usage chunk (when
stream_options.include_usage asks) and `data: [DONE]`: the OpenAI streaming wire format.
It records, per marker "u<id>", when it sent the first token and the last chunk, and how
late the last chunk was against its schedule (a late fake would inflate the platform's
and the relay's figures alike).

The Telegram fake answers sendMessage, editMessageText, editMessageReplyMarkup,
sendChatAction, getMe, answerCallbackQuery, deleteWebhook, setWebhook, setMyCommands and
any other method in the Bot API's JSON shapes (https://core.telegram.org/bots/api), with
form-encoded or JSON parameters. Like Telegram it refuses an edit that changes nothing
(400 "message is not modified") and an edit of a message it never sent. It records every
sendMessage and edit per chat with its arrival time and text.

Both answer GET /stats (everything recorded) and POST /reset (forget it); the Telegram
fake also answers GET /progress (the chats whose full answer is shown) and the model
GET /progress (streams in flight), cheap enough to poll. For `make faults` (bench/faults.py)
both take POST /faults?status=429|500&count=N: the next N requests (Bot API methods that
send or edit, or chat completions) fail with that status, in the platform's error shape
(a 429 says "retry after 1" as Telegram and OpenAI-compatible servers do); with
&seconds=S instead, every request fails for S seconds (an outage).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from urllib.parse import parse_qsl

from aiohttp import web


def answer_text(marker: str, chunks: int) -> str:
    """The full answer to "u<id>": what the bench expects to see in that chat."""
    return " ".join([f"answer to {marker}", *(f"w{number}" for number in range(1, chunks))])


def model_app(first_token: float, total: float, chunks: int) -> web.Application:
    records: dict = {
        "first_token": {},
        "last_chunk": {},
        "late": {},
        "requests": 0,
        "peak_streams": 0,
    }
    in_flight = {"streams": 0}
    faults = Faults()

    async def completions(request: web.Request) -> web.StreamResponse:
        received = time.monotonic()
        body = await request.json()
        records["requests"] += 1
        status = faults.take()
        if status:
            kind = "rate_limit_exceeded" if status == 429 else "server_error"
            error = {"error": {"message": f"injected {status}", "type": kind, "code": kind}}
            headers = {"retry-after": "1"} if status == 429 else {}
            return web.json_response(error, status=status, headers=headers)
        content = body["messages"][-1]["content"]
        if isinstance(content, list):  # content parts: take the text ones
            content = " ".join(part.get("text", "") for part in content)
        marker = str(content).strip()
        words = answer_text(marker, chunks).split(" ")
        pieces = [" ".join(words[:3])] + [f" {word}" for word in words[3:]]
        base = {
            "id": f"chatcmpl-{marker}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", "bench"),
        }
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        in_flight["streams"] += 1
        records["peak_streams"] = max(records["peak_streams"], in_flight["streams"])
        try:
            await response.prepare(request)

            async def event(payload: dict) -> None:
                await response.write(f"data: {json.dumps({**base, **payload})}\n\n".encode())

            def delta(content: dict, finish: str | None = None) -> dict:
                return {"choices": [{"index": 0, "delta": content, "finish_reason": finish}]}

            await event(delta({"role": "assistant", "content": ""}))
            step = (total - first_token) / max(1, len(pieces) - 1)
            for index, piece in enumerate(pieces):
                due = received + first_token + index * step
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                await event(delta({"content": piece}))
                if index == 0:
                    records["first_token"][marker] = time.time()
            records["last_chunk"][marker] = time.time()
            records["late"][marker] = round(time.monotonic() - due, 4)
            await event(delta({}, finish="stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": 20, "completion_tokens": len(pieces)}
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                await event({"choices": [], "usage": usage})
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        finally:
            in_flight["streams"] -= 1
        return response

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(records)

    async def progress(request: web.Request) -> web.Response:
        return web.json_response(in_flight)

    async def reset(request: web.Request) -> web.Response:
        for key in ("first_token", "last_chunk", "late"):
            records[key] = {}
        records["requests"] = records["peak_streams"] = 0
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=2**24)
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/stats", stats)
    app.router.add_get("/progress", progress)
    app.router.add_post("/reset", reset)
    app.router.add_post("/faults", faults.handler)
    return app


class Faults:
    """Requests fail with `status`: the next `count` of them (POST /faults?status=..&count=..),
    or all of them for `seconds` (POST /faults?status=..&seconds=..: an outage)."""

    def __init__(self) -> None:
        self.left = 0
        self.until = 0.0
        self.status = 0
        self.injected = 0

    def take(self) -> int:
        if time.monotonic() < self.until:
            self.injected += 1
            return self.status
        if self.left <= 0:
            return 0
        self.left -= 1
        self.injected += 1
        return self.status

    async def handler(self, request: web.Request) -> web.Response:
        self.status = int(request.query["status"])
        self.left = int(request.query.get("count", 0))
        self.until = time.monotonic() + float(request.query.get("seconds", 0))
        return web.json_response({"ok": True, "injected_so_far": self.injected})


async def _params(request: web.Request) -> dict:
    if request.content_type == "application/json":
        return await request.json()
    if request.content_type == "multipart/form-data":
        return {key: value for key, value in (await request.post()).items()}
    decoded = {}
    for key, value in parse_qsl((await request.read()).decode()):
        try:  # PTB sends nested objects (reply_markup, ...) as JSON strings
            decoded[key] = json.loads(value)
        except ValueError:
            decoded[key] = value
    return decoded


def telegram_app(chunks: int) -> web.Application:
    me = {
        "id": 123456,
        "is_bot": True,
        "first_name": "Bench",
        "username": "bench_bot",
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }
    message_ids = itertools.count(1000)
    # calls: [arrival (epoch s), method, chat id, message id, text]
    records: dict = {"calls": [], "not_modified": 0, "not_found": 0, "abandoned": {}}
    shown: dict[tuple[int, int], str] = {}  # (chat, message) -> text it shows
    complete: set[int] = set()
    faults = Faults()

    def message(chat_id: int, message_id: int, text: str, markup=None) -> dict:
        sent = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "U"},
            "from": me,
            "text": text,
        }
        if markup:
            sent["reply_markup"] = markup
        return sent

    def error(code: int, description: str) -> web.Response:
        body = {"ok": False, "error_code": code, "description": description}
        return web.json_response(body, status=code)

    def shows(chat_id: int, text: str) -> None:
        if text == answer_text(f"u{chat_id}", chunks):
            complete.add(chat_id)

    async def method(request: web.Request) -> web.Response:
        name = request.match_info["method"]
        try:
            params = await _params(request)
        except ConnectionResetError:  # the client gave up (its own time-out) mid-request
            records["abandoned"][name] = records["abandoned"].get(name, 0) + 1
            raise
        now = time.time()
        chat_id = int(params["chat_id"]) if "chat_id" in params else 0
        text = params.get("text")
        markup = params.get("reply_markup")
        if name in ("sendMessage", "editMessageText", "editMessageReplyMarkup"):
            status = faults.take()
            if status == 429:
                body = {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 1",
                    "parameters": {"retry_after": 1},
                }
                return web.json_response(body, status=429)
            if status:
                return error(status, "Internal Server Error")
        if name == "sendMessage":
            message_id = next(message_ids)
            shown[(chat_id, message_id)] = text
            records["calls"].append([now, name, chat_id, message_id, text])
            shows(chat_id, text)
            return web.json_response({"ok": True, "result": message(chat_id, message_id, text)})
        if name in ("editMessageText", "editMessageReplyMarkup"):
            message_id = int(params["message_id"])
            if (chat_id, message_id) not in shown:
                records["not_found"] += 1
                return error(400, "Bad Request: message to edit not found")
            if name == "editMessageText":
                if shown[(chat_id, message_id)] == text:
                    records["not_modified"] += 1
                    return error(
                        400,
                        "Bad Request: message is not modified: specified new message content "
                        "and reply markup are exactly the same as a current content and reply "
                        "markup of the message",
                    )
                shown[(chat_id, message_id)] = text
                shows(chat_id, text)
            records["calls"].append([now, name, chat_id, message_id, text])
            result = message(chat_id, message_id, shown[(chat_id, message_id)], markup)
            return web.json_response({"ok": True, "result": result})
        if name == "getMe":
            return web.json_response({"ok": True, "result": me})
        if name == "sendChatAction":
            records["calls"].append([now, name, chat_id, 0, None])
        # answerCallbackQuery, deleteWebhook, setWebhook, setMyCommands, ...: Telegram
        # answers these with `true`.
        return web.json_response({"ok": True, "result": True})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(records)

    async def progress(request: web.Request) -> web.Response:
        return web.json_response({"complete": sorted(complete), "calls": len(records["calls"])})

    async def reset(request: web.Request) -> web.Response:
        records.update(calls=[], not_modified=0, not_found=0, abandoned={})
        shown.clear()
        complete.clear()
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=2**24)
    app.router.add_post("/bot{token}/{method}", method)
    app.router.add_get("/stats", stats)
    app.router.add_get("/progress", progress)
    app.router.add_post("/reset", reset)
    app.router.add_post("/faults", faults.handler)
    return app


async def serve(app: web.Application, port: int, name: str) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    print(f"{name} fake ready on {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    role, port = sys.argv[1], int(sys.argv[2])
    if role == "model":
        first, total, count = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
        asyncio.run(serve(model_app(first, total, count), port, role))
    else:
        asyncio.run(serve(telegram_app(int(sys.argv[3])), port, role))
