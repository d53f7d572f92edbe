"""CPU per HTTP exchange of the two clients on the answering path, by transport.

    uv run --no-sync python bench/transport_cost.py

Starts the bench's fake Bot API and fake model (bench/fakes.py) in their own processes,
then, in this one, measures `time.process_time()` per call: python-telegram-bot over its
own httpx transport and over ours (apps/bots/platforms/telegram/transport.py), and model
streams: `AsyncOpenAI` over the SDK's default transport and over `DefaultAioHttpClient`,
and the platform's own stream reader (apps/providers/sse.py).
CPU seconds, not wall time, so other work on the machine matters little.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import free_port, start, stop_all, wait_ready  # noqa: E402

CALLS = 600  # sendMessage + editMessageText pairs
STREAMS = 400


async def telegram(api: str, transport: str) -> float:
    from telegram import Bot
    from telegram.request import HTTPXRequest

    request = (
        _transport().AiohttpRequest()
        if transport == "aiohttp"
        else HTTPXRequest(connection_pool_size=32)
    )
    bot = Bot("T", base_url=f"{api}/bot", request=request)

    async def one(chat: int) -> None:
        sent = await bot.send_message(chat_id=chat, text="hello there " * 5)
        await bot.edit_message_text(
            chat_id=chat, message_id=sent.message_id, text="hello there, more " * 6
        )

    await asyncio.gather(*(one(chat) for chat in range(1, 51)))  # warm up
    started = time.process_time()
    await asyncio.gather(*(one(chat) for chat in range(1, CALLS + 1)))
    cpu = time.process_time() - started
    await request.shutdown()
    return cpu / (2 * CALLS)


def _transport():
    """The platform's PTB transport module, loaded from its file (no Django set-up needed)."""
    return _module("apps/bots/platforms/telegram/transport.py")


def _module(relative: str):
    """One of the platform's modules that needs no Django, loaded from its file."""
    import importlib.util

    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def model(base_url: str, transport: str) -> float:
    """CPU per stream: the SDK's create() over httpx or aiohttp, its post() returning
    plain chunks, and the platform's own reader (apps/providers/sse.py)."""
    import openai

    client = openai.AsyncOpenAI(
        api_key="bench",
        base_url=base_url,
        http_client=openai.DefaultAioHttpClient() if transport != "default" else None,
    )
    sse = _module("apps/providers/sse.py")
    session = sse.new_session(connect_timeout=10)
    headers = sse.request_headers("bench", None)

    async def one(index: int) -> None:
        request = dict(
            model="bench",
            messages=[{"role": "user", "content": f"u{index}"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        if transport == "sse":
            stream = sse.chat_chunks(session, f"{base_url}/chat/completions", headers, request)
        elif transport == "post":
            stream = await client.post(
                "/chat/completions",
                body=request,
                cast_to=object,
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
        else:
            stream = await client.chat.completions.create(**request)
        async for _chunk in stream:
            pass

    await asyncio.gather(*(one(index) for index in range(30)))
    started = time.process_time()
    await asyncio.gather(*(one(index) for index in range(STREAMS)))
    cpu = time.process_time() - started
    await client.close()
    await session.close()
    return cpu / STREAMS


def main() -> None:
    telegram_port, model_port = free_port(), free_port()
    python = sys.executable
    fake_telegram = start(
        f"{python} bench/fakes.py telegram {telegram_port} 13", dict(os.environ), "tc-tg.log"
    )
    fake_model = start(
        f"{python} bench/fakes.py model {model_port} 0.05 0.2 13", dict(os.environ), "tc-m.log"
    )
    try:
        wait_ready(f"http://127.0.0.1:{telegram_port}/progress", fake_telegram)
        wait_ready(f"http://127.0.0.1:{model_port}/progress", fake_model)
        api, base_url = f"http://127.0.0.1:{telegram_port}", f"http://127.0.0.1:{model_port}/v1"
        for transport in ("httpx", "aiohttp"):
            per_call = asyncio.run(telegram(api, transport))
            print(f"Telegram via PTB over {transport}: {per_call * 1000:.2f} ms CPU per call")
        names = {
            "default": "AsyncOpenAI create() over httpx",
            "aiohttp": "AsyncOpenAI create() over aiohttp",
            "post": "AsyncOpenAI post() over aiohttp, plain chunks",
            "sse": "apps/providers/sse.py (aiohttp)",
        }
        for transport, name in names.items():
            per_stream = asyncio.run(model(base_url, transport))
            print(f"{name}: {per_stream * 1000:.2f} ms CPU per stream")
    finally:
        stop_all()


if __name__ == "__main__":
    main()
