"""Prometheus metrics: the metric objects, the small functions that record them, the scrape.

Recording is an in-memory increment (a write to a memory-mapped file in multiprocess
mode): no query, no network, no lock held across I/O, so it is safe on the webhook path
and on the turn engine's event loop. The functions take what the caller already has in
hand (names, numbers); none of them touches the database.

Multiprocess mode: with PROMETHEUS_MULTIPROC_DIR set (in the environment before the
process starts, as prometheus-client requires), every process on the host (web, Celery
workers, beat, connectors) writes its metrics there and `/metrics` of any web process
sums them all. Workers in other containers or on other machines serve their own
endpoint instead (METRICS_WORKER_PORT, see `worker_endpoint_start`).

The pipeline's backlog (queue depth, pending messages and the age of the oldest) is
computed when scraped, from Redis and the database, by the web process only.
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import secrets
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if MULTIPROCESS_DIR:
    os.makedirs(MULTIPROCESS_DIR, exist_ok=True)
    # Gauges that are "live" (turns in flight, open sockets) must forget this process
    # when it ends normally; a killed process's files go when the directory is wiped.
    atexit.register(lambda: multiprocess.mark_process_dead(os.getpid()))

WEBHOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
FIRST_TOKEN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)
MODEL_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)

WEBHOOK_REQUESTS = Counter(
    "assistant_webhook_requests",
    "Webhook calls answered, by platform and HTTP status.",
    ["platform", "status"],
)
WEBHOOK_ACK_SECONDS = Histogram(
    "assistant_webhook_ack_seconds",
    "Time from a webhook call's arrival to its answer, by platform and HTTP status.",
    ["platform", "status"],
    buckets=WEBHOOK_BUCKETS,
)
ANSWERS_INTERRUPTED = Counter(
    "assistant_answers_interrupted",
    "Answers stopped because the user wrote again (bots set to stop and answer together).",
)
MESSAGES_INGESTED = Counter(
    "assistant_messages_ingested",
    "Users' messages stored (repeated deliveries not counted), by platform.",
    ["platform"],
)
INGEST_TO_FIRST_TOKEN_SECONDS = Histogram(
    "assistant_ingest_to_first_token_seconds",
    "Time from storing a user's message to the first token of its answer, by platform.",
    ["platform"],
    buckets=FIRST_TOKEN_BUCKETS,
)
MODEL_FIRST_TOKEN_SECONDS = Histogram(
    "assistant_model_ttft_seconds",
    "Model time to first token, by provider and profile.",
    ["provider", "profile"],
    buckets=FIRST_TOKEN_BUCKETS,
)
MODEL_CALL_SECONDS = Histogram(
    "assistant_model_call_seconds",
    "Model calls and their duration, by provider, profile and outcome "
    "(answered, interrupted, failed).",
    ["provider", "profile", "outcome"],
    buckets=MODEL_BUCKETS,
)
MODEL_ERRORS = Counter(
    "assistant_model_errors",
    "Failed model calls by provider, profile and kind of error.",
    ["provider", "profile", "kind"],
)
MODEL_TOKENS = Counter(
    "assistant_model_tokens",
    "Tokens used, by provider, profile and kind (prompt, completion).",
    ["provider", "profile", "kind"],
)
MODEL_COST = Counter(
    "assistant_model_cost",
    "Cost of answers at the profiles' prices, by provider and profile.",
    ["provider", "profile"],
)
MODEL_FALLBACKS = Counter(
    "assistant_model_fallbacks",
    "Times a profile was passed over for its fallback, and why (failed, cooling_down, disabled).",
    ["provider", "profile", "reason"],
)
PROVIDER_COOLDOWNS = Counter(
    "assistant_provider_cooldowns",
    "Cooldowns started after repeated failures, by provider.",
    ["provider"],
)
DELIVERIES = Counter(
    "assistant_deliveries",
    "Answers sent to chats, by platform and outcome (delivered, retry, failed).",
    ["platform", "outcome"],
)
RETRIES = Counter(
    "assistant_retries",
    "Work tried again, by stage (model, delivery, turn, sweeper).",
    ["stage"],
)
TURNS_IN_FLIGHT = Gauge(
    "assistant_turns_in_flight",
    "Conversations being answered right now by the turn engines.",
    multiprocess_mode="livesum",
)
CONSOLE_SOCKETS = Gauge(
    "assistant_console_sockets",
    "Open websockets, by kind (web_chat, console, console_conversation).",
    ["kind"],
    multiprocess_mode="livesum",
)


# Recording -------------------------------------------------------------------------------


def webhook_record(*, platform: str, status: int, seconds: float) -> None:
    """One webhook call answered with `status` after `seconds`."""
    code = str(status)
    WEBHOOK_REQUESTS.labels(platform, code).inc()
    WEBHOOK_ACK_SECONDS.labels(platform, code).observe(seconds)


def message_ingested_record(*, platform: str) -> None:
    """A user's message was stored."""
    MESSAGES_INGESTED.labels(platform).inc()


def first_token_record(*, platform: str, received_at: datetime, first_token_at: datetime) -> None:
    """The first token of an answer to a message stored at `received_at` arrived."""
    seconds = (first_token_at - received_at).total_seconds()
    INGEST_TO_FIRST_TOKEN_SECONDS.labels(platform).observe(max(0.0, seconds))


def _names(profile: Any) -> tuple[str, str]:
    # The profile's provider is already loaded wherever a model call is made.
    return profile.provider.name, profile.name


def model_call_record(
    *,
    profile: Any,
    outcome: str,
    seconds: float,
    first_token_seconds: float | None = None,
    error_kind: str = "",
) -> None:
    """One call to a profile's model ended: answered, interrupted or failed."""
    provider, name = _names(profile)
    MODEL_CALL_SECONDS.labels(provider, name, outcome).observe(seconds)
    if first_token_seconds is not None:
        MODEL_FIRST_TOKEN_SECONDS.labels(provider, name).observe(first_token_seconds)
    if outcome == "failed":
        MODEL_ERRORS.labels(provider, name, error_kind or "unknown").inc()


def model_usage_record(
    *, profile: Any, prompt_tokens: int, completion_tokens: int, cost: Decimal | float
) -> None:
    """Tokens an answer used and what they cost."""
    provider, name = _names(profile)
    MODEL_TOKENS.labels(provider, name, "prompt").inc(prompt_tokens)
    MODEL_TOKENS.labels(provider, name, "completion").inc(completion_tokens)
    MODEL_COST.labels(provider, name).inc(float(cost))


def model_fallback_record(*, profile: Any, reason: str) -> None:
    """`profile` was passed over for its fallback (failed, cooling_down, disabled)."""
    provider, name = _names(profile)
    MODEL_FALLBACKS.labels(provider, name, reason).inc()


def model_retry_record(*, profile: Any) -> None:
    """A failed model call is tried again on the same profile."""
    RETRIES.labels("model").inc()


def provider_cooldown_record(*, provider: Any) -> None:
    """A provider started a cooldown."""
    PROVIDER_COOLDOWNS.labels(provider.name).inc()


def delivery_record(*, platform: str, outcome: str) -> None:
    """An answer was delivered, will be retried, or failed for good."""
    DELIVERIES.labels(platform, outcome).inc()
    if outcome == "retry":
        RETRIES.labels("delivery").inc()


def retry_record(*, stage: str, count: int = 1) -> None:
    """Work tried again at `stage` (turn: a model outage's wait; sweeper: re-dispatched)."""
    if count:
        RETRIES.labels(stage).inc(count)


def turn_started() -> None:
    """A turn engine took a conversation."""
    TURNS_IN_FLIGHT.inc()


def turn_interrupted() -> None:
    """A turn stopped its answer because the user wrote again."""
    ANSWERS_INTERRUPTED.inc()


def turn_ended() -> None:
    """A turn engine let a conversation go."""
    TURNS_IN_FLIGHT.dec()


def socket_opened(*, kind: str) -> None:
    """A websocket of `kind` was accepted."""
    CONSOLE_SOCKETS.labels(kind).inc()


def socket_closed(*, kind: str) -> None:
    """An accepted websocket of `kind` closed."""
    CONSOLE_SOCKETS.labels(kind).dec()


# Scraping --------------------------------------------------------------------------------


class _ThisProcess(Collector):
    """The default registry's metrics (single-process mode)."""

    def collect(self) -> Iterable:
        return REGISTRY.collect()


class PipelineCollector(Collector):
    """The backlog, computed when scraped: queue depth, pending messages, worker heartbeat."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._guarded("queue depth", _queue_depth)
        yield from self._guarded("pending messages", _pending_messages)
        yield from self._guarded("workers", _workers)

    @staticmethod
    def _guarded(what: str, collect) -> Iterator[GaugeMetricFamily]:
        # An unreachable Redis or database leaves its gauges out (readyz says why), never
        # the whole scrape.
        try:
            families = list(collect())
        except Exception as error:  # noqa: BLE001
            logger.warning("metrics: could not read the %s: %s", what, error.__class__.__name__)
            return
        yield from families


def _queue_depth() -> Iterator[GaugeMetricFamily]:
    from django.conf import settings

    from apps.core.health import broker_redis

    client = broker_redis()
    if client is None:
        return  # not a Redis broker: its own monitoring shows the queues
    family = GaugeMetricFamily(
        "assistant_queue_depth", "Tasks waiting in the broker's queue.", labels=["queue"]
    )
    queues = [settings.CELERY_LLM_QUEUE, settings.CELERY_TASK_DEFAULT_QUEUE]
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            # kombu keeps a queue's prioritised tasks in lists of their own.
            for key in (queue, *(f"{queue}\x06\x16{step}" for step in (3, 6, 9))):
                pipe.llen(key)
        lengths = pipe.execute()
    for index, queue in enumerate(queues):
        family.add_metric([queue], sum(lengths[index * 4 : index * 4 + 4]))
    yield family


def _pending_messages() -> Iterator[GaugeMetricFamily]:
    from django.db.models import Count, Min
    from django.utils import timezone

    from apps.conversations.choices import Direction, MessageStatus
    from apps.conversations.models import Message

    pending = Message.objects.filter(
        direction=Direction.IN, status=MessageStatus.RECEIVED
    ).aggregate(count=Count("id"), oldest=Min("received_at"))
    yield GaugeMetricFamily(
        "assistant_pending_messages",
        "Users' messages stored and not yet taken by a turn.",
        value=pending["count"],
    )
    age = (timezone.now() - pending["oldest"]).total_seconds() if pending["oldest"] else 0.0
    yield GaugeMetricFamily(
        "assistant_oldest_pending_message_age_seconds",
        "How long the oldest message not yet taken by a turn has waited (0: none waits).",
        value=max(0.0, age),
    )


def _workers() -> Iterator[GaugeMetricFamily]:
    from apps.core.health import worker_heartbeats

    ages = worker_heartbeats()
    fresh = [age for age in ages.values() if age <= _heartbeat_stale_seconds()]
    yield GaugeMetricFamily(
        "assistant_workers_alive",
        "Celery workers whose heartbeat is fresh.",
        value=len(fresh),
    )
    if ages:
        yield GaugeMetricFamily(
            "assistant_worker_heartbeat_age_seconds",
            "Seconds since the freshest worker heartbeat.",
            value=min(ages.values()),
        )


def _heartbeat_stale_seconds() -> float:
    from django.conf import settings

    return settings.WORKER_HEARTBEAT_SECONDS * 3


def scrape_registry(*, pipeline: bool) -> CollectorRegistry:
    """What one scrape exposes: every process's metrics, plus the backlog if `pipeline`."""
    registry = CollectorRegistry(auto_describe=True)
    if MULTIPROCESS_DIR:
        multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIR)
    else:
        registry.register(_ThisProcess())
    if pipeline:
        registry.register(PipelineCollector())
    return registry


def exposition(*, pipeline: bool = True) -> tuple[bytes, str]:
    """The text exposition of a scrape and its content type."""
    return generate_latest(scrape_registry(pipeline=pipeline)), CONTENT_TYPE_LATEST


# Who may scrape --------------------------------------------------------------------------

PROXY_HEADERS = ("X-Forwarded-For", "X-Real-Ip", "Forwarded")


@cache
def _networks(
    allowed: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in allowed)


def scrape_allowed(*, remote_addr: str, authorization: str, proxied: bool) -> bool:
    """May this caller read the metrics?

    With a bearer token equal to METRICS_TOKEN, from anywhere. Without one, only from
    METRICS_ALLOWED_NETWORKS (loopback by default), and never through a proxy: behind
    nginx on the same host every request comes from 127.0.0.1.
    """
    from django.conf import settings

    token = settings.METRICS_TOKEN
    scheme, _, given = authorization.partition(" ")
    if token and scheme.lower() == "bearer" and secrets.compare_digest(given.strip(), token):
        return True
    if proxied or not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    return any(
        address in network for network in _networks(tuple(settings.METRICS_ALLOWED_NETWORKS))
    )


# A worker's own endpoint -----------------------------------------------------------------


def worker_endpoint_start(*, port: int, address: str) -> Any:
    """Serve this process's metrics (no backlog gauges) on `address:port`, in a thread.

    For workers that share no PROMETHEUS_MULTIPROC_DIR with a web process (other
    containers or machines). The same access rule as /metrics applies.
    """
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client.exposition import ThreadingWSGIServer

    def app(environ, start_response):
        allowed = scrape_allowed(
            remote_addr=environ.get("REMOTE_ADDR", ""),
            authorization=environ.get("HTTP_AUTHORIZATION", ""),
            proxied=any(f"HTTP_{h.upper().replace('-', '_')}" in environ for h in PROXY_HEADERS),
        )
        if not allowed:
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"forbidden\n"]
        body, content_type = exposition(pipeline=False)
        start_response("200 OK", [("Content-Type", content_type)])
        return [body]

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - one line per scrape is noise
            pass

    server = make_server(address, port, app, ThreadingWSGIServer, handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-endpoint", daemon=True).start()
    logger.info("worker metrics at http://%s:%s/", address, server.server_port)
    return server
