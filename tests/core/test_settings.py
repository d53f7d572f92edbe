"""Settings derived from the environment: what a developer's shell can and cannot change."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.core.redis import get_redis

SETTINGS_FILE = Path(settings.BASE_DIR) / "assistant" / "settings.py"
CHILD_TEST = f"{__file__}::test_settings_refuse_a_redis_url_on_the_test_database"


def load_settings(monkeypatch, **environment: str) -> dict:
    """Execute settings.py afresh under `environment` (the running settings stay as they are)."""
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "TEST_REDIS_DB", "PORT", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


def redis_urls(namespace: dict) -> set[str]:
    """Every Redis URL a test run's clients connect to."""
    return {
        namespace["REDIS_URL"],
        namespace["CACHES"]["default"]["LOCATION"],
        namespace["CHANNEL_LAYERS"]["default"]["CONFIG"]["hosts"][0]["address"],
        namespace["CELERY_BROKER_URL"],
    }


def test_tests_use_their_own_redis_database_on_the_developers_server(monkeypatch):
    namespace = load_settings(
        monkeypatch,
        REDIS_URL="redis://:s3cret@127.0.0.1:6379/3?health_check_interval=10",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/4",
    )

    assert redis_urls(namespace) == {"redis://:s3cret@127.0.0.1:6379/15?health_check_interval=10"}


def test_the_test_database_can_be_chosen_and_a_db_query_is_replaced(monkeypatch):
    namespace = load_settings(
        monkeypatch, REDIS_URL="redis://127.0.0.1:6380?db=2", TEST_REDIS_DB="9"
    )
    assert redis_urls(namespace) == {"redis://127.0.0.1:6380/9"}

    namespace = load_settings(monkeypatch, REDIS_URL="unix:///run/redis.sock?db=1")
    assert redis_urls(namespace) == {"unix:///run/redis.sock?db=15"}


def test_settings_refuse_a_redis_url_on_the_test_database(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL selects Redis database 15"):
        load_settings(monkeypatch, REDIS_URL="redis://127.0.0.1:6379/15")
    with pytest.raises(ImproperlyConfigured, match="database 7"):
        load_settings(monkeypatch, REDIS_URL="redis://127.0.0.1:6379?db=7", TEST_REDIS_DB="7")


def test_a_test_run_against_a_redis_url_on_its_database_starts_nothing_and_flushes_nothing():
    """`make test` with REDIS_URL on the test database: pytest stops before touching Redis.

    Had it started, its session would have emptied its Redis database first.
    """
    sentinel = f"sentinel:{uuid.uuid4()}"
    redis = get_redis()  # this run's own database, the one the child run would use
    redis.set(sentinel, "kept")
    environment = {**os.environ, "REDIS_URL": settings.REDIS_URL}
    environment.pop("PYTEST_VERSION", None)  # the child is a pytest run of its own

    child = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", CHILD_TEST],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert child.returncode != 0
    refusal = f"REDIS_URL selects Redis database {settings.TEST_REDIS_DB}"
    assert refusal in child.stdout + child.stderr
    assert redis.get(sentinel) == b"kept"
    redis.delete(sentinel)


def test_webhook_urls_default_to_the_port_the_web_process_listens_on(monkeypatch):
    assert load_settings(monkeypatch)["PUBLIC_BASE_URL"] == "http://127.0.0.1:8000"
    assert load_settings(monkeypatch, PORT="8123")["PUBLIC_BASE_URL"] == "http://127.0.0.1:8123"


def test_an_explicit_public_base_url_wins_over_the_port(monkeypatch):
    namespace = load_settings(monkeypatch, PORT="8123", PUBLIC_BASE_URL="https://bots.example.com/")
    assert namespace["PUBLIC_BASE_URL"] == "https://bots.example.com"
