"""Configuration that every message reads, cached in each process.

A turn and a webhook need the bot, its model profile and provider: the same few rows
for thousands of messages. `config_cache.get()` keeps them per process; every save or
delete of a watched model (`watch_config()`) bumps one Redis counter once its
transaction commits, and a process that sees the counter move drops everything it
kept. A change made in the admin therefore applies to the next message on every
process, at the cost of one Redis GET per lookup, or one per turn: inside
`config_cache.pinned()` (around a turn's preparation) the counter is read once and every
lookup of that thread uses it (a turn's routing, bot and provider then also agree with
each other). While Redis is unreachable, lookups read the database every time (slower,
never wrong) instead of failing.

Cached objects are shared between threads: treat them as read-only.
Bulk `QuerySet.update()` sends no signal; code that changes configuration that way
must call `config_changed()` itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import redis
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from apps.core.redis import get_redis

logger = logging.getLogger(__name__)

T = TypeVar("T")

CONFIG_VERSION_KEY = "assistant:config-version"
_UNREADABLE = object()  # Redis could not say which version is current
_NOT_PINNED = object()


class ConfigCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: Any = None  # the counter as Redis returned it
        self._entries: dict[Hashable, Any] = {}
        self._pinned = threading.local()

    @staticmethod
    def _current_version() -> Any:
        try:
            return get_redis().get(CONFIG_VERSION_KEY)
        except redis.RedisError:
            return _UNREADABLE

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Read the configuration's version once for the lookups of this block (this
        thread's): a turn costs one Redis GET, not one per lookup. A change
        saved meanwhile applies from the next block on."""
        if hasattr(self._pinned, "version"):  # nested: the outer block's version holds
            yield
            return
        self._pinned.version = self._current_version()
        try:
            yield
        finally:
            del self._pinned.version

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The cached value for `key`, loaded with `load()` when missing or outdated."""
        version = getattr(self._pinned, "version", _NOT_PINNED)
        if version is _NOT_PINNED:
            version = self._current_version()
        if version is _UNREADABLE:
            # Without the counter nothing says whether the cache is current: read afresh.
            return load()
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self._version = version
            if key in self._entries:
                return self._entries[key]
        value = load()
        with self._lock:
            if self._version == version:  # else a newer version cleared the cache meanwhile
                self._entries[key] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


config_cache = ConfigCache()


def config_changed() -> None:
    """Tell every process that configuration changed (after the transaction commits)."""
    transaction.on_commit(_bump)


def _bump() -> None:
    config_cache.clear()
    try:
        get_redis().incr(CONFIG_VERSION_KEY)
    except redis.RedisError:
        # Other processes keep their copy until the next change reaches Redis (or Redis
        # restarts empty, which also moves the counter for them).
        logger.exception("could not tell other processes that configuration changed")


def _on_change(sender, **kwargs) -> None:
    config_changed()


def watch_config(*models) -> None:
    """Saving or deleting any of `models` invalidates every process's cached configuration."""
    for model in models:
        uid = f"config-cache:{model._meta.label}"
        post_save.connect(_on_change, sender=model, dispatch_uid=uid + ":save")
        post_delete.connect(_on_change, sender=model, dispatch_uid=uid + ":delete")
