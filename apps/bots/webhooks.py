"""One webhook endpoint for every platform: verify, parse, ingest, answer in milliseconds.

`/api/webhooks/<platform>/<bot id>/` serves each platform registered with `webhook=True`
(apps.bots.platforms). POST carries events; GET is a platform's URL check (a handshake
such as WeCom's echostr) when its adapter offers `handshake()`. What a call answers
beyond {"ok": true} (Feishu's challenge echo and card toasts, WeCom's plain text) is
collected by the platform's `webhook_reply` context manager while the call is handled.

Under daphne, `WebhookApp` answers these in front of Django: on the web server's event
loop, with no middleware and no thread per request, handing the whole receive (verify,
parse, one insert, enqueue) to the bounded database threads (apps.core.aio). Live-console
updates go out after the response, from the process's event publisher.

When the database cannot take the message right now (every pooled connection busy
for DB_POOL_TIMEOUT, or the server unreachable), nothing was stored and the answer
is 503 with Retry-After: the platforms deliver the update again later.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import parse_qsl

from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.bots.platforms import platform_specs
from apps.bots.platforms.base import WebhookRejected
from apps.bots.services import webhook_handshake, webhook_receive
from apps.core.aio import process_loop
from apps.core.logs import log_context, request_id_from
from apps.core.metrics import webhook_record

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5

# status, body (JSON object, or text for platforms that want plain text), headers
Answer = tuple[int, dict[str, Any] | str, dict[str, str]]

# The platforms that call webhooks, read once: no lookup work per request.
WEBHOOK_PLATFORMS = frozenset(name for name, spec in platform_specs().items() if spec.webhook)
URL_CHECK_PLATFORMS = frozenset(name for name, spec in platform_specs().items() if spec.url_check)
GET_NOT_ALLOWED: Answer = (405, {"ok": False, "error": "POST only"}, {"Allow": "POST"})
_reply_scopes: dict[str, Callable[[], AbstractContextManager[Any]] | None] = {}


def _reply_scope(platform: str) -> Callable[[], AbstractContextManager[Any]] | None:
    """The platform's webhook-reply context manager, imported on its first call."""
    try:
        return _reply_scopes[platform]
    except KeyError:
        path = platform_specs()[platform].webhook_reply
        scope = _reply_scopes[platform] = import_string(path) if path else None
        return scope


def _overloaded(error: OperationalError) -> Answer:
    logger.warning("webhook refused for now (database unavailable): %s", error)
    return 503, {"ok": False, "error": "busy, try again"}, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def webhook_answer(
    platform: str,
    bot_id: uuid.UUID,
    method: str,
    headers: dict[str, str],
    body: bytes,
    query: dict[str, str],
) -> Answer:
    """Handle one webhook call of any platform (in a database thread): its answer."""
    if method == "GET" and platform not in URL_CHECK_PLATFORMS:
        return GET_NOT_ALLOWED
    with log_context(request_id=request_id_from(headers), platform=platform, bot=bot_id):
        scope = _reply_scope(platform)
        if scope is None:
            return _answer_plain(platform, bot_id, method, headers, body, query)
        with scope() as reply:
            try:
                if method == "GET":
                    text = webhook_handshake(bot_id=bot_id, platform=platform, query=query)
                    return 200, text, {}
                webhook_receive(
                    bot_id=bot_id, platform=platform, headers=headers, body=body, query=query
                )
            except WebhookRejected as error:
                return error.status, reply.error(str(error)), {}
            except OperationalError as error:
                return _overloaded(error)
        return 200, reply.body(), {}


def _answer_plain(
    platform: str,
    bot_id: uuid.UUID,
    method: str,
    headers: dict[str, str],
    body: bytes,
    query: dict[str, str],
) -> Answer:
    try:
        if method == "GET":
            return 200, webhook_handshake(bot_id=bot_id, platform=platform, query=query), {}
        stored = webhook_receive(
            bot_id=bot_id, platform=platform, headers=headers, body=body, query=query
        )
    except WebhookRejected as error:
        return error.status, {"ok": False, "error": str(error)}, {}
    except OperationalError as error:
        return _overloaded(error)
    return 200, {"ok": True, "stored": stored}, {}


# The Django view: what the test client and a WSGI server reach. Under daphne,
# WebhookApp below answers the same URLs first, with the same function.


@csrf_exempt
@require_http_methods(["GET", "POST"])
def platform_webhook(request: HttpRequest, platform: str, bot_id: uuid.UUID) -> HttpResponse:
    """GET/POST /api/webhooks/<platform>/<bot id>/: one platform call (event or URL check)."""
    if platform not in WEBHOOK_PLATFORMS:
        raise Http404("no such platform")
    started = time.perf_counter()
    status, payload, headers = webhook_answer(
        platform,
        bot_id,
        request.method or "POST",
        dict(request.headers),
        request.body,
        request.GET.dict(),
    )
    if isinstance(payload, str):
        response = HttpResponse(payload, status=status, headers=headers, content_type="text/plain")
    else:
        response = JsonResponse(payload, status=status, headers=headers)
    webhook_record(platform=platform, status=status, seconds=time.perf_counter() - started)
    return response


# The same endpoint as a bare ASGI app, in front of Django ------------------------------

MAX_BODY_BYTES = 1024 * 1024  # platform events are a few kilobytes


class WebhookApp:
    """Serves /api/webhooks/<platform>/<bot id>/ without Django's request machinery.

    Under daphne every Django request passes each middleware through a thread hop;
    a webhook needs none of them (no session, no CSRF, no user), so this ASGI app
    answers it directly: read the body, run the same function as the Django view
    above in the database threads, send the answer. Everything else goes on to
    `django_app`.
    """

    def __init__(self, django_app):
        self.django_app = django_app

    async def __call__(self, scope, receive, send) -> None:
        parts = scope["path"].strip("/").split("/") if scope["type"] == "http" else []
        if len(parts) != 4 or parts[:2] != ["api", "webhooks"] or parts[2] not in WEBHOOK_PLATFORMS:
            await self.django_app(scope, receive, send)
            return
        started = time.perf_counter()
        status, payload, extra = await self._receive(parts[2], parts[3], scope, receive)
        await _send(send, status, payload, extra)
        webhook_record(platform=parts[2], status=status, seconds=time.perf_counter() - started)

    @staticmethod
    async def _receive(platform: str, bot_id: str, scope, receive) -> Answer:
        method = scope["method"]
        if method != "POST" and (method != "GET" or platform not in URL_CHECK_PLATFORMS):
            return GET_NOT_ALLOWED
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
        raw_query = scope.get("query_string", b"")
        query = dict(parse_qsl(raw_query.decode("latin-1"))) if raw_query else {}
        return await process_loop.db(
            webhook_answer, platform, bot_uuid, method, headers, body, query
        )


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


async def _send(send, status: int, payload: dict[str, Any] | str, headers: dict[str, str]):
    if isinstance(payload, str):
        body, content_type = payload.encode(), b"text/plain; charset=utf-8"
    else:
        body, content_type = json.dumps(payload).encode(), b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *((name.lower().encode(), value.encode()) for name, value in headers.items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
