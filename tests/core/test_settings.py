"""Settings derived from the environment: what a developer's shell can and cannot change."""

from __future__ import annotations

import ast
import os
import re
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


# Declared settings ---------------------------------------------------------------------

CODE_DIRS = ("apps", "assistant")


def _python_files() -> list[Path]:
    base = Path(settings.BASE_DIR)
    return sorted(
        path
        for directory in CODE_DIRS
        for path in (base / directory).rglob("*.py")
        if "migrations" not in path.parts and path != SETTINGS_FILE
    )


def _imports_django_settings(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "django.conf"
        and any(alias.name == "settings" and alias.asname is None for alias in node.names)
        for node in ast.walk(tree)
    )


def settings_reads() -> tuple[dict[str, list[str]], list[str]]:
    """Every `settings.NAME` the code reads (name -> where), and every getattr/hasattr
    on settings (where), in modules that import django.conf.settings."""
    names: dict[str, list[str]] = {}
    lookups: list[str] = []
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if not _imports_django_settings(tree):
            continue
        where = path.relative_to(settings.BASE_DIR)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "settings"
            ):
                names.setdefault(node.attr, []).append(f"{where}:{node.lineno}")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id == "settings"
            ):
                lookups.append(f"{where}:{node.lineno}")
    return names, lookups


def test_every_setting_the_code_reads_is_declared():
    names, _ = settings_reads()
    # The scan sees the code's reads (so an empty result cannot pass for a clean one).
    assert {"REDIS_URL", "TURN_LOCK_SECONDS", "CONNECTORS_STALL_SECONDS"} <= set(names)

    undeclared = {name: where for name, where in names.items() if not hasattr(settings, name)}

    assert undeclared == {}, "read but not declared in assistant/settings.py"


def test_settings_are_read_as_attributes_not_with_a_default():
    """`getattr(settings, "X", default)` hides a setting nobody declared (or documented)."""
    _, lookups = settings_reads()

    assert lookups == [], "declare the setting in assistant/settings.py and read settings.X"


def environment_variables_read_by_settings() -> set[str]:
    """The names settings.py reads with django-environ (env("X"), env.int("X"), …) or os.environ."""
    names = set()
    for node in ast.walk(ast.parse(SETTINGS_FILE.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        function = node.func
        reads_env = (isinstance(function, ast.Name) and function.id == "env") or (
            isinstance(function, ast.Attribute)
            and (
                (isinstance(function.value, ast.Name) and function.value.id == "env")
                or ast.unparse(function) in ("os.environ.get", "os.getenv")
            )
        )
        if reads_env:
            names.add(first.value)
    return names


def test_every_environment_variable_settings_reads_is_in_env_example():
    listed = set(
        re.findall(
            r"^#?\s*([A-Z][A-Z0-9_]*)=",
            (Path(settings.BASE_DIR) / ".env.example").read_text(encoding="utf-8"),
            flags=re.MULTILINE,
        )
    )
    read = environment_variables_read_by_settings()
    assert {"SECRET_KEY", "DATABASE_URL", "LOGIN_FAILURE_LIMIT", "PYTEST_VERSION"} <= read

    # PYTEST_VERSION is set by pytest itself, not by whoever runs the platform.
    assert sorted(read - listed - {"PYTEST_VERSION"}) == []
