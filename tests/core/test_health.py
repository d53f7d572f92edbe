"""/healthz, /readyz and `manage.py healthcheck` against the real database, Redis and worker."""

from __future__ import annotations

import json
import tomllib
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from apps.bots.choices import ConnectionMode
from apps.bots.models import Bot
from apps.core.health import WORKERS_KEY, health_redis
from tests.factories import make_telegram_bot

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused at once


def project_version() -> str:
    with open(settings.BASE_DIR / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]["version"]


def test_healthz_answers_with_version_and_uptime_without_checking_anything(client, settings):
    settings.REDIS_URL = CLOSED_PORT_REDIS  # liveness does not depend on Redis

    response = client.get("/healthz")

    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "ok" and answer["version"] == project_version()
    assert answer["uptime_seconds"] >= 0


def test_readyz_is_200_when_everything_answers(client, worker):
    response = client.get("/readyz")

    answer = response.json()
    assert response.status_code == 200, answer
    assert answer["status"] == "ok"
    assert set(answer["checks"]) == {"database", "redis", "broker", "worker", "connectors"}
    assert all(check["status"] == "ok" for check in answer["checks"].values())
    # The session's worker beats with the queues it consumes.
    assert answer["checks"]["worker"]["workers"] >= 1
    assert health_redis().zcard(WORKERS_KEY) >= 1
    assert answer["checks"]["connectors"] == {"status": "ok", "bots": 0}


def test_readyz_is_503_when_redis_is_unreachable(client, worker, settings):
    settings.REDIS_URL = CLOSED_PORT_REDIS

    response = client.get("/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"] == {"status": "error", "error": "ConnectionError"}
    # Heartbeats live in that Redis: no worker can be seen either.
    assert checks["worker"]["status"] == "error"
    assert checks["database"]["status"] == "ok" and checks["broker"]["status"] == "ok"


def test_readyz_is_503_when_the_broker_is_unreachable(client, worker, settings):
    settings.CELERY_BROKER_URL = CLOSED_PORT_REDIS

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"status": "error", "error": "ConnectionError"}


def test_readyz_names_a_queue_no_live_worker_consumes(client, worker, settings):
    settings.CELERY_LLM_QUEUE = "answers-nobody-consumes"

    response = client.get("/readyz")

    assert response.status_code == 503
    check = response.json()["checks"]["worker"]
    assert check["status"] == "error"
    assert check["queues_without_worker"] == ["answers-nobody-consumes"]


def test_readyz_reports_a_persistent_bot_without_a_running_connector(client, worker, profile):
    bot = make_telegram_bot(
        profile=profile,
        api_base_url="http://127.0.0.1:9",
        connection_mode=ConnectionMode.PERSISTENT,
    )

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["connectors"] == {
        "status": "error",
        "bots": 1,
        "bots_without_connector": [str(bot.pk)],
    }

    # What the connector supervisor records on every pass while the connector runs.
    Bot.objects.filter(pk=bot.pk).update(
        connector_status="running", connector_heartbeat_at=timezone.now()
    )
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["connectors"] == {"status": "ok", "bots": 1}


def test_healthcheck_command_prints_the_json_and_fails_when_not_ready(worker, settings):
    out = StringIO()
    call_command("healthcheck", "--check", "database", "--check", "redis", stdout=out)
    answer = json.loads(out.getvalue())
    assert answer["status"] == "ok" and set(answer["checks"]) == {"database", "redis"}

    settings.REDIS_URL = CLOSED_PORT_REDIS
    out = StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("healthcheck", stdout=out)
    assert exit_.value.code == 1
    answer = json.loads(out.getvalue())
    assert answer["status"] == "error"
    assert answer["checks"]["redis"]["status"] == "error"


def test_healthcheck_live_needs_nothing(settings):
    settings.REDIS_URL = CLOSED_PORT_REDIS
    out = StringIO()

    call_command("healthcheck", "--live", stdout=out)

    assert json.loads(out.getvalue())["version"] == project_version()


def test_the_old_health_url_still_answers(client, transactional_db, settings):
    assert client.get("/health/").json() == {"status": "ok", "database": "ok", "redis": "ok"}
    settings.REDIS_URL = CLOSED_PORT_REDIS
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["redis"] == "error: ConnectionError"
