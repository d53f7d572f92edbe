"""The bare relay the platform is measured against: the same work, nothing else.

Takes Telegram webhook posts, answers 200 at once, streams the answer from the model
with one long-lived AsyncOpenAI client and sends it with one sendMessage through one
long-lived HTTP session. No storage, no streaming edits, no retries.

    python bench/relay.py PORT MODEL_BASE_URL TELEGRAM_API_URL
"""

import asyncio
import sys

import aiohttp
import openai
from aiohttp import web


async def main(port: int, model_url: str, telegram_url: str) -> None:
    model = openai.AsyncOpenAI(base_url=model_url, api_key="relay", max_retries=0)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    tasks: set[asyncio.Task] = set()

    async def answer(update: dict) -> None:
        message = update["message"]
        stream = await model.chat.completions.create(
            model="bench",
            messages=[{"role": "user", "content": message["text"]}],
            stream=True,
        )
        parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        await session.post(
            f"{telegram_url}/botrelay/sendMessage",
            json={"chat_id": message["chat"]["id"], "text": "".join(parts)},
        )

    async def webhook(request: web.Request) -> web.Response:
        task = asyncio.create_task(answer(await request.json()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return web.json_response({"ok": True})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "answering": len(tasks)})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    print("relay ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
