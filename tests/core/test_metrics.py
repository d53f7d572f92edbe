"""/metrics: what a scrape shows after real webhook calls, who may scrape, multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Conversation, Message
from apps.core.redis import get_redis
from assistant.asgi import application
from tests.bots.test_webhook_asgi import call as asgi_call
from tests.factories import make_web_bot
from tests.telegram_updates import post_body, post_update, private_text_update

LOOPBACK_ONLY = ["127.0.0.0/8", "::1/128"]


def scrape(client, **extra) -> dict[tuple[str, tuple], float]:
    """GET /metrics and parse it: {(sample name, sorted labels): value}."""
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_telegram_webhook_moves_the_request_counters(client, telegram_bot):
    before = scrape(client)

    assert post_update(client, telegram_bot, private_text_update("hello")).status_code == 200
    assert post_body(client, telegram_bot, b"{}", secret="wrong").status_code == 403

    after = scrape(client)
    ok = {"platform": "telegram", "status": "200"}
    refused = {"platform": "telegram", "status": "403"}
    for name in ("assistant_webhook_requests_total", "assistant_webhook_ack_seconds_count"):
        assert value(after, name, **ok) == value(before, name, **ok) + 1
        assert value(after, name, **refused) == value(before, name, **refused) + 1
    # The answer came within the last bucket, and was counted in the +Inf one.
    bucket = "assistant_webhook_ack_seconds_bucket"
    assert value(after, bucket, le="+Inf", **ok) == value(before, bucket, le="+Inf", **ok) + 1
    ingested = "assistant_messages_ingested_total"
    assert (
        value(after, ingested, platform="telegram")
        == value(before, ingested, platform="telegram") + 1
    )


def test_the_asgi_short_path_is_counted_too(client, telegram_bot):
    before = scrape(client)
    path = f"/api/webhooks/telegram/{telegram_bot.pk}/"

    assert asgi_call(path, method="GET")[0] == 405
    assert asgi_call("/api/webhooks/telegram/not-a-uuid/", body=b"{}")[0] == 404

    after = scrape(client)
    for status in ("405", "404"):
        labels = {"platform": "telegram", "status": status}
        name = "assistant_webhook_requests_total"
        assert value(after, name, **labels) == value(before, name, **labels) + 1


def test_the_backlog_is_computed_when_scraped(client, profile, settings):
    bot = make_web_bot(profile=profile)
    conversation = Conversation.objects.create(bot=bot, chat_id="v", chat_type="private")
    for waited in (90, 30):
        Message.objects.create(
            conversation=conversation,
            bot=bot,
            direction=Direction.IN,
            author=Author.USER,
            text="still waiting",
            status=MessageStatus.RECEIVED,
            received_at=timezone.now() - timedelta(seconds=waited),
        )
    # A queue of its own, so the session's worker (if running) never empties it.
    queue = f"metrics-test-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    get_redis().rpush(queue, "a", "b", "c")
    try:
        samples = scrape(client)
    finally:
        get_redis().delete(queue)

    assert value(samples, "assistant_queue_depth", queue=queue) == 3
    assert value(samples, "assistant_pending_messages") == 2
    assert value(samples, "assistant_oldest_pending_message_age_seconds") >= 90


def test_scraping_needs_loopback_or_the_token(client, transactional_db, settings):
    settings.METRICS_ALLOWED_NETWORKS = LOOPBACK_ONLY
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    # Through a proxy on this host everything comes from 127.0.0.1: not enough.
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403

    settings.METRICS_TOKEN = "scrape-token-for-tests"
    from_afar = {"REMOTE_ADDR": "203.0.113.9"}
    response = client.get("/metrics", **from_afar)
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Bearer"
    wrong = {"Authorization": "Bearer not-the-token"}
    assert client.get("/metrics", headers=wrong, **from_afar).status_code == 401
    right = {"Authorization": "Bearer scrape-token-for-tests"}
    assert client.get("/metrics", headers=right, **from_afar).status_code == 200

    settings.METRICS_ALLOWED_NETWORKS = ["203.0.113.0/24"]
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", **from_afar).status_code == 200
    assert client.get("/metrics").status_code == 403


RECORD_IN_ANOTHER_PROCESS = """
from apps.core.metrics import delivery_record, socket_opened
delivery_record(platform="telegram", outcome="delivered")
delivery_record(platform="telegram", outcome="retry")
socket_opened(kind="console")
"""
SCRAPE_IN_ANOTHER_PROCESS = """
from apps.core.metrics import exposition, socket_opened
socket_opened(kind="web_chat")
print(exposition(pipeline=False)[0].decode())
"""


def run_python(code: str, directory) -> str:
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    finished = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


def test_multiprocess_mode_sums_every_process_and_forgets_ended_ones(tmp_path):
    """Worker processes record into PROMETHEUS_MULTIPROC_DIR; a web process's scrape sums them."""
    for _ in range(2):
        run_python(RECORD_IN_ANOTHER_PROCESS, tmp_path)

    text = run_python(SCRAPE_IN_ANOTHER_PROCESS, tmp_path)

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert (
        value(samples, "assistant_deliveries_total", platform="telegram", outcome="delivered") == 2
    )
    assert value(samples, "assistant_retries_total", stage="delivery") == 2
    # Sockets are live gauges: the ended processes' are gone, the scraping one's counts.
    assert value(samples, "assistant_console_sockets", kind="console") == 0
    assert value(samples, "assistant_console_sockets", kind="web_chat") == 1


def test_console_sockets_are_counted_while_open(client, admin_user, transactional_db):
    client.force_login(admin_user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    headers = [
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"testserver"),
        (b"cookie", cookie.encode()),
    ]

    async def open_then_close() -> tuple[float, float, float]:
        before = open_sockets("console")
        communicator = WebsocketCommunicator(application, "/ws/console/", headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        during = open_sockets("console")
        await communicator.disconnect()
        return before, during, open_sockets("console")

    before, during, after = async_to_sync(open_then_close)()
    assert (during, after) == (before + 1, before)


def open_sockets(kind: str) -> float:
    return REGISTRY.get_sample_value("assistant_console_sockets", {"kind": kind}) or 0.0
