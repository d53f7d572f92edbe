"""Webhook endpoints: verify, parse, ingest, answer 200 in milliseconds.

Under daphne, `WebhookApp` answers them in front of Django: on the web server's
event loop, with no middleware and no thread per request, handing the whole
receive (verify, parse, one insert, enqueue) to the bounded database threads
(apps.core.aio). Live-console updates go out after the response, from the
process's event publisher.

When the database cannot take the message right now (every pooled connection busy
for DB_POOL_TIMEOUT, or the server unreachable), nothing was stored and the answer
is 503 with Retry-After: both platforms deliver the update again later.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from django.db import OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.bots.choices import Platform
from apps.bots.platforms.base import WebhookRejected
from apps.bots.services import webhook_receive
from apps.core.aio import process_loop
from apps.core.logs import log_context, request_id_from
from apps.core.metrics import webhook_record

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5

Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, headers


def _overloaded(error: OperationalError) -> Answer:
    logger.warning("webhook refused for now (database unavailable): %s", error)
    return 503, {"ok": False, "error": "busy, try again"}, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _telegram(bot_id, headers: dict[str, str], body: bytes) -> Answer:
    with log_context(request_id=request_id_from(headers), platform="telegram", bot=bot_id):
        return _telegram_receive(bot_id, headers, body)


def _telegram_receive(bot_id, headers: dict[str, str], body: bytes) -> Answer:
    try:
        stored = webhook_receive(
            bot_id=bot_id, platform=Platform.TELEGRAM, headers=headers, body=body
        )
    except WebhookRejected as error:
        return error.status, {"ok": False, "error": str(error)}, {}
    except OperationalError as error:
        return _overloaded(error)
    return 200, {"ok": True, "stored": stored}, {}


def _feishu(bot_id, headers: dict[str, str], body: bytes) -> Answer:
    from apps.bots.platforms.feishu import reply as feishu

    # The reply (challenge echo, card toast) is collected while receiving, in this thread.
    with (
        log_context(request_id=request_id_from(headers), platform="feishu", bot=bot_id),
        feishu.webhook_reply() as reply,
    ):
        try:
            webhook_receive(bot_id=bot_id, platform=Platform.FEISHU, headers=headers, body=body)
        except WebhookRejected as error:
            return error.status, {"msg": str(error)}, {}
        except OperationalError as error:
            return _overloaded(error)
    return 200, reply.body(), {}


def _answer(platform: str, request: HttpRequest, bot_id) -> JsonResponse:
    started = time.perf_counter()
    status, payload, headers = _RECEIVERS[platform](bot_id, dict(request.headers), request.body)
    response = JsonResponse(payload, status=status, headers=headers)
    webhook_record(platform=platform, status=status, seconds=time.perf_counter() - started)
    return response


# Django views: what the test client and a WSGI server reach. Under daphne, WebhookApp
# below answers the same URLs first, with the same receive functions.


@csrf_exempt
@require_POST
def telegram_webhook(request: HttpRequest, bot_id) -> JsonResponse:
    """POST /api/webhooks/telegram/<bot id>/: one Telegram Update."""
    return _answer("telegram", request, bot_id)


@csrf_exempt
@require_POST
def feishu_webhook(request: HttpRequest, bot_id) -> JsonResponse:
    """POST /api/webhooks/feishu/<bot id>/: one Feishu/Lark event or card callback.

    Answers the URL check's challenge and card callbacks' toasts in the response body.
    """
    return _answer("feishu", request, bot_id)


# The same endpoints as a bare ASGI app, in front of Django ----------------------------

MAX_BODY_BYTES = 1024 * 1024  # Telegram updates and Feishu events are a few kilobytes
_RECEIVERS = {"telegram": _telegram, "feishu": _feishu}


class WebhookApp:
    """Serves POST /api/webhooks/<platform>/<bot id>/ without Django's request machinery.

    Under daphne every Django request passes each middleware through a thread hop;
    a webhook needs none of them (no session, no CSRF, no user), so this ASGI app
    answers it directly: read the body, run the same receive function as the Django
    views above in the database threads, send the JSON answer. Everything else goes
    on to `django_app`.
    """

    def __init__(self, django_app):
        self.django_app = django_app

    async def __call__(self, scope, receive, send) -> None:
        parts = scope["path"].strip("/").split("/") if scope["type"] == "http" else []
        if len(parts) != 4 or parts[:2] != ["api", "webhooks"] or parts[2] not in _RECEIVERS:
            await self.django_app(scope, receive, send)
            return
        started = time.perf_counter()
        status, payload, extra = await self._receive(parts[2], parts[3], scope, receive)
        await _send_json(send, status, payload, extra)
        webhook_record(platform=parts[2], status=status, seconds=time.perf_counter() - started)

    @staticmethod
    async def _receive(platform: str, bot_id: str, scope, receive) -> Answer:
        if scope["method"] != "POST":
            return 405, {"ok": False, "error": "POST only"}, {"Allow": "POST"}
        try:
            bot_uuid = uuid.UUID(bot_id)
        except ValueError:
            return 404, {"ok": False, "error": "no such bot"}, {}
        body = await _read_body(receive)
        if body is None:
            return 413, {"ok": False, "error": "body too large"}, {}
        headers = {
            name.decode("latin-1").title(): value.decode("latin-1")
            for name, value in scope.get("headers", [])
        }
        return await process_loop.db(_RECEIVERS[platform], bot_uuid, headers, body)


async def _read_body(receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send_json(send, status: int, payload: dict[str, Any], headers: dict[str, str]):
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *((name.lower().encode(), value.encode()) for name, value in headers.items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
