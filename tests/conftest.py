"""Shared fixtures: loopback fakes of the outside world, a real Celery worker, personas."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker
from celery.worker import state as worker_state
from channels.layers import channel_layers
from django.conf import settings
from django.db import connections
from django.utils import translation

from assistant.celery import app as celery_app
from tests.factories import make_profile, make_provider, make_telegram_bot, make_web_bot
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram import FakeTelegram
from tests.local_model import local_model_url  # noqa: F401 - a fixture, for the local_model tests
from tests.redis_server import RedisOutOfReach, RedisServer


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """SQLite tests use a file (WAL + busy timeout), not shared-cache memory.

    In-memory shared cache locks whole tables and fails at once ("database table is
    locked") when the test thread reads while worker threads write; a file waits.
    """
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        path = tmp_path_factory.mktemp("db") / "test.sqlite3"
        database.setdefault("TEST", {})["NAME"] = str(path)


@pytest.fixture(scope="session", autouse=True)
def _clean_redis():
    """Tests own their Redis database (TEST_REDIS_DB, 15 by default): start it empty.

    Only that database: settings point every Redis client of a test run at it, and
    this refuses to flush any other (say, settings replaced by another module).
    """
    from apps.core.redis import get_redis

    client = get_redis()
    selected = client.connection_pool.connection_kwargs.get("db", 0)
    owned = getattr(settings, "TEST_REDIS_DB", None)
    if selected != owned or not getattr(settings, "TESTING", False):
        pytest.exit(
            f"refusing to empty Redis database {selected}: tests own only TEST_REDIS_DB={owned}",
            returncode=3,
        )
    client.flushdb()
    yield


@pytest.fixture
def fake_openai():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def fake_telegram():
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture
def redis_unreachable(settings):
    """Redis out of reach for this process's own clients until `restore()` or the end."""
    out_of_reach = RedisOutOfReach(settings)
    yield out_of_reach
    out_of_reach.restore()  # before the other fixtures' clean-up uses Redis


@pytest.fixture
def redis_server():
    """A Redis server of the test's own, started; the test may kill and start it again."""
    server = RedisServer()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def redis_server_down():
    """A Redis server of the test's own, not started: nothing answers on its port until
    the test calls `start()`."""
    server = RedisServer()
    yield server
    server.kill()


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each test gets its own channel layer object (the same Redis).

    channels_redis keeps receive state on the layer object (a receive lock, the event
    loop receiving, buffered messages), made for one server loop. Tests run several
    loops in one process (each `asyncio.run`, a Runner per fixture); a consumer cut off
    when an earlier test's loop closed could leave that state to the next test's loop,
    whose consumer then never gets its messages.
    """
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in LANGUAGE_CODE. LocaleMiddleware activates a request's language
    in the thread that serves it and nothing resets it: the test client serves requests
    in the test's own thread, so a Chinese request would leave later tests in Chinese."""
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _fresh_flood_limits():
    """Each test starts with full flood buckets (apps.guard) and reads the limits again:
    a test's FloodLimits row goes with its database, but not from the processes' caches."""
    from apps.core.config import CONFIG_VERSION_KEY
    from apps.core.redis import get_redis

    client = get_redis()
    keys = list(client.scan_iter("assistant:flood:*"))
    if keys:
        client.delete(*keys)
    client.incr(CONFIG_VERSION_KEY)
    yield


SETTLE_SECONDS = 30
POOL_RETURN_SECONDS = 10
_connections_lost = 0  # by earlier tests, already reported
_worker_running = False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """Before a test's fixtures go (its fakes, then the database flush), let its work end.

    A webhook a test posted may still be answering on the session's worker. Flushing
    the database under a running turn deadlocks PostgreSQL's TRUNCATE against the
    turn's INSERT, and leaves the rows for the next test; a turn outliving its fakes
    fails against closed ports. After the fixtures are gone, every pooled database
    connection must be back.
    """
    if _worker_running:
        _settle_pipeline()
    result = yield
    if nextitem is not None:  # after the last test the test database (and its pool) is gone
        _pooled_connections_returned(item)
    return result


def _settle_pipeline() -> None:
    """Wait until the broker's queues are empty and the worker and its engine are idle."""
    from apps.conversations.engine import turn_engine
    from apps.core.aio import process_loop
    from apps.core.redis import get_redis

    queues = [settings.CELERY_LLM_QUEUE, settings.CELERY_TASK_DEFAULT_QUEUE]
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        process_loop.run(turn_engine.settle(timeout=max(0.0, deadline - time.monotonic())))
        waiting = sum(get_redis().llen(queue) for queue in queues)
        if not waiting and not worker_state.active_requests and not turn_engine.tasks:
            return
        time.sleep(0.02)  # a task between the broker and the engine; look again
    raise AssertionError(f"the pipeline was still busy {SETTLE_SECONDS}s after the test")


def _pooled_connections_returned(item) -> None:
    """Every pooled connection the test's threads took went back, this thread's own aside.

    A thread that ends holding one (a test-client request in `asyncio.to_thread`: the
    test client never closes its connection) loses it to the pool for good; after
    DB_POOL_MAX_SIZE such losses every later turn waits DB_POOL_TIMEOUT and fails, far
    from the test that lost them. Connections still being opened by the pool, or on
    their way back from a finishing thread, are waited for.
    """
    global _connections_lost
    database = connections["default"]
    if database.vendor != "postgresql" or database.alias not in database._connection_pools:
        # No pool yet, so nothing was taken from it; asking for `database.pool` would open
        # one, against the database the settings name when no test database is set up.
        return
    deadline = time.monotonic() + POOL_RETURN_SECONDS
    while True:
        stats = database.pool.get_stats()
        out = stats["pool_size"] - stats["pool_available"] - (database.connection is not None)
        if out <= _connections_lost:
            return
        if time.monotonic() > deadline:
            lost, _connections_lost = out - _connections_lost, out  # told once, by this test
            pytest.fail(
                f"{lost} pooled database connection(s) not returned after {item.nodeid}: "
                "a thread ended holding one (close its connections, as tests.threads.in_thread "
                "does)",
                pytrace=False,
            )
        time.sleep(0.02)


@pytest.fixture(scope="session")
def celery_session_worker(django_db_setup, django_db_blocker):
    """A real Celery worker (thread pool) consuming the real Redis broker."""
    celery_app.control.purge()
    with (
        django_db_blocker.unblock(),
        start_worker(
            celery_app,
            pool="threads",
            concurrency=8,
            perform_ping_check=False,
            queues=[settings.CELERY_LLM_QUEUE, settings.CELERY_TASK_DEFAULT_QUEUE],
            loglevel="WARNING",
            shutdown_timeout=30,
        ) as worker,
    ):
        global _worker_running
        _worker_running = True
        try:
            yield worker
        finally:
            _worker_running = False


@pytest.fixture
def worker(celery_session_worker, transactional_db):
    """Tests that need the pipeline: a running worker and committed rows it can see."""
    return celery_session_worker


@pytest.fixture
def profile(fake_openai, transactional_db):
    return make_profile(provider=make_provider(base_url=fake_openai.base_url))


@pytest.fixture
def telegram_bot(profile, fake_telegram):
    return make_telegram_bot(profile=profile, api_base_url=fake_telegram.url)


@pytest.fixture
def web_bot(profile):
    return make_web_bot(profile=profile)


@pytest.fixture
def staff_user(django_user_model, transactional_db):
    return django_user_model.objects.create_user(
        "staff", password="staff-password-1", is_staff=True, is_superuser=True
    )
