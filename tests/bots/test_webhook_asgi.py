"""The webhooks' short path under daphne: the ASGI app in front of Django."""

from __future__ import annotations

import asyncio
import json

from asgiref.testing import ApplicationCommunicator

from apps.conversations.choices import Direction
from apps.conversations.models import Message
from assistant.asgi import application
from tests.telegram_updates import private_text_update

SECRET_HEADER = b"x-telegram-bot-api-secret-token"


def call(path: str, *, body: bytes = b"", method: str = "POST", headers=()) -> tuple[int, dict]:
    async def exchange():
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"content-type", b"application/json"), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": body})
        start = await communicator.receive_output(timeout=20)
        content = await communicator.receive_output(timeout=20)
        # Let the application end as a server would (request_finished returns its
        # database connection to the pool), not be cancelled by asyncio.run.
        await communicator.wait(timeout=20)
        return start["status"], json.loads(content["body"] or b"{}")

    return asyncio.run(exchange())


def test_an_update_is_stored_and_acknowledged(telegram_bot):
    path = f"/api/webhooks/telegram/{telegram_bot.pk}/"
    update = json.dumps(private_text_update("hello over ASGI")).encode()
    secret = (SECRET_HEADER, telegram_bot.config["webhook_secret"].encode())

    status, answer = call(path, body=update, headers=[secret])
    assert (status, answer) == (200, {"ok": True, "stored": 1})
    assert Message.objects.get(direction=Direction.IN).text == "hello over ASGI"
    # The platform delivered it again: acknowledged, not stored twice.
    assert call(path, body=update, headers=[secret]) == (200, {"ok": True, "stored": 0})
    assert Message.objects.filter(direction=Direction.IN).count() == 1


def test_bad_calls_get_a_clear_4xx_and_store_nothing(telegram_bot):
    path = f"/api/webhooks/telegram/{telegram_bot.pk}/"
    update = json.dumps(private_text_update("hello")).encode()
    secret = (SECRET_HEADER, telegram_bot.config["webhook_secret"].encode())

    assert call(path, body=update, headers=[(SECRET_HEADER, b"wrong")])[0] == 403
    assert call(path, body=b"{not json", headers=[secret])[0] == 400
    assert call(path, method="GET")[0] == 405
    assert call("/api/webhooks/telegram/not-a-uuid/", body=update, headers=[secret])[0] == 404
    too_big = b"{" + b" " * (1024 * 1024) + b"}"
    assert call(path, body=too_big, headers=[secret])[0] == 413
    assert not Message.objects.exists()


def test_other_paths_still_reach_django(transactional_db):
    status, answer = call("/health/", method="GET")
    assert status in (200, 503) and "database" in json.dumps(answer)
