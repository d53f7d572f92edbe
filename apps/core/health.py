"""Liveness and readiness: what /healthz, /readyz and `manage.py healthcheck` report.

Readiness checks the database, Redis, the Celery broker, that live workers consume the
pipeline's queues (a heartbeat each worker refreshes in Redis: asking the workers with
`celery inspect ping` takes a second or more) and that every bot in persistent mode has
a running connector. Each check answers within a couple of seconds even when what it
checks hangs.
"""

from __future__ import annotations

import contextlib
import logging
import time
import tomllib
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import redis
from celery import bootsteps
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.core.redis import as_text

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0
WORKERS_KEY = "assistant:workers"  # sorted set: worker name -> heartbeat (Redis time)
WORKER_QUEUES_KEY = "assistant:workers:queues"  # hash: worker name -> queues it consumes
STARTED = time.monotonic()

# Scored with Redis's clock, so workers and web processes on machines whose clocks
# disagree still agree on a heartbeat's age.
_BEAT_SCRIPT = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - 86400)
for _, name in ipairs(gone) do
  redis.call('ZREM', KEYS[1], name)
  redis.call('HDEL', KEYS[2], name)
end
return now
"""


@cache
def version() -> str:
    """The platform's version, from pyproject.toml."""
    try:
        with open(settings.BASE_DIR / "pyproject.toml", "rb") as file:
            return tomllib.load(file)["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def liveness() -> dict[str, Any]:
    """The process answers: its version and how long it has run."""
    return {
        "status": "ok",
        "version": version(),
        "uptime_seconds": round(time.monotonic() - STARTED, 1),
    }


# Clients with short timeouts ---------------------------------------------------------------


@cache
def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
        retry_on_timeout=False,
    )


def health_redis() -> redis.Redis:
    """A client of REDIS_URL that gives up after a couple of seconds."""
    return _redis_client(settings.REDIS_URL)


def broker_redis() -> redis.Redis | None:
    """A short-timeout client of the Celery broker, or None when the broker is not Redis."""
    url = settings.CELERY_BROKER_URL
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        return None
    return _redis_client(url)


# Worker heartbeats -------------------------------------------------------------------------


def worker_heartbeat_beat(*, name: str, queues: Iterable[str]) -> None:
    """Record that worker `name`, consuming `queues`, is alive now."""
    health_redis().eval(
        _BEAT_SCRIPT, 2, WORKERS_KEY, WORKER_QUEUES_KEY, name, ",".join(sorted(queues))
    )


def worker_heartbeat_clear(*, name: str) -> None:
    """Worker `name` stops: forget it at once rather than when its heartbeat goes stale."""
    client = health_redis()
    client.zrem(WORKERS_KEY, name)
    client.hdel(WORKER_QUEUES_KEY, name)


def worker_heartbeats() -> dict[str, float]:
    """Every known worker's heartbeat age in seconds."""
    with health_redis().pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.zrange(WORKERS_KEY, 0, -1, withscores=True)
        (seconds, _micro), beats = pipe.execute()
    return {name.decode(): max(0.0, seconds - score) for name, score in beats}


def _worker_queues(names: Iterable[str]) -> dict[str, set[str]]:
    names = list(names)
    if not names:
        return {}
    values = health_redis().hmget(WORKER_QUEUES_KEY, names)
    return {
        name: set(as_text(value).split(",")) if value else set()
        for name, value in zip(names, values, strict=True)
    }


class WorkerHeartbeat(bootsteps.StartStopStep):
    """A Celery consumer step: refresh this worker's heartbeat every WORKER_HEARTBEAT_SECONDS.

    It runs on the consumer's own timer, so a worker whose consumer is stuck stops beating.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.timer_entry = None

    def start(self, parent) -> None:
        name = parent.hostname
        queues = list(parent.app.amqp.queues.consume_from)

        def beat() -> None:
            try:
                worker_heartbeat_beat(name=name, queues=queues)
            except redis.RedisError as error:
                logger.warning("worker heartbeat not recorded: %s", error)

        beat()
        self.timer_entry = parent.timer.call_repeatedly(settings.WORKER_HEARTBEAT_SECONDS, beat)

    def stop(self, parent) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None
        with contextlib.suppress(redis.RedisError):  # else it goes stale on its own
            worker_heartbeat_clear(name=parent.hostname)

    shutdown = stop


# Checks --------------------------------------------------------------------------------------

Check = Callable[[], dict[str, Any]]


def _error(error: BaseException) -> dict[str, Any]:
    # The class only: these answers may be public, and messages name hosts and ports.
    return {"status": "error", "error": error.__class__.__name__}


def check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"status": "ok"}


def check_redis() -> dict[str, Any]:
    health_redis().ping()
    return {"status": "ok"}


def check_broker() -> dict[str, Any]:
    client = broker_redis()
    if client is not None:
        client.ping()
        return {"status": "ok"}
    from kombu import Connection

    with Connection(settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT_SECONDS) as broker:
        broker.ensure_connection(max_retries=1)
    return {"status": "ok"}


def check_worker() -> dict[str, Any]:
    stale_after = settings.WORKER_HEARTBEAT_SECONDS * 3
    alive = [name for name, age in worker_heartbeats().items() if age <= stale_after]
    consumed = set().union(*_worker_queues(alive).values()) if alive else set()
    needed = {settings.CELERY_LLM_QUEUE, settings.CELERY_TASK_DEFAULT_QUEUE}
    missing = sorted(needed - consumed)
    if missing:
        return {"status": "error", "workers": len(alive), "queues_without_worker": missing}
    return {"status": "ok", "workers": len(alive)}


def check_connectors() -> dict[str, Any]:
    from apps.bots.choices import ConnectionMode
    from apps.bots.models import Bot
    from apps.bots.platforms import connector_paths

    stale_after = timedelta(seconds=settings.CONNECTORS_STALL_SECONDS)
    bots = list(
        Bot.objects.filter(
            enabled=True,
            connection_mode=ConnectionMode.PERSISTENT,
            platform__in=list(connector_paths()),
        ).values_list("pk", "connector_heartbeat_at")
    )
    now = timezone.now()
    down = sorted(str(pk) for pk, beat in bots if beat is None or now - beat > stale_after)
    if down:
        return {"status": "error", "bots": len(bots), "bots_without_connector": down}
    return {"status": "ok", "bots": len(bots)}


CHECKS: dict[str, Check] = {
    "database": check_database,
    "redis": check_redis,
    "broker": check_broker,
    "worker": check_worker,
    "connectors": check_connectors,
}


def readiness(*, only: Iterable[str] | None = None) -> tuple[bool, dict[str, Any]]:
    """Run the checks (all, or those named in `only`): (ready, the JSON answer)."""
    results: dict[str, Any] = {}
    for name in only or CHECKS:
        try:
            results[name] = CHECKS[name]()
        except Exception as error:  # noqa: BLE001 - reported, not raised
            results[name] = _error(error)
    ready = all(result["status"] == "ok" for result in results.values())
    return ready, {"status": "ok" if ready else "error", "version": version(), "checks": results}
