"""The per-process configuration cache: a change applies to the next turn, and a turn
reads the configuration at one version (apps.core.config)."""

from __future__ import annotations

import threading

from apps.core.config import CONFIG_VERSION_KEY, ConfigCache
from apps.core.redis import get_redis


class Source:
    """What the database holds, and how often it was read."""

    def __init__(self) -> None:
        self.value = "first"
        self.reads = 0

    def load(self) -> str:
        self.reads += 1
        return self.value


def _changed_elsewhere(source: Source, value: str) -> None:
    """Another process saves a change: the row changes, then the counter moves."""
    source.value = value
    get_redis().incr(CONFIG_VERSION_KEY)


def test_a_lookup_is_cached_until_the_counter_moves():
    cache, source = ConfigCache(), Source()

    assert cache.get("bot", source.load) == "first"
    assert cache.get("bot", source.load) == "first"
    assert source.reads == 1

    _changed_elsewhere(source, "second")
    assert cache.get("bot", source.load) == "second"
    assert source.reads == 2


def test_inside_a_pinned_block_the_version_is_read_once_and_the_next_block_sees_a_change():
    cache, source, rules = ConfigCache(), Source(), Source()
    redis = get_redis()
    before = redis.info("commandstats").get("cmdstat_get", {}).get("calls", 0)

    with cache.pinned():
        assert cache.get("bot", source.load) == "first"
        _changed_elsewhere(source, "second")
        # The turn already under way keeps the version it started with.
        assert cache.get("bot", source.load) == "first"
        assert cache.get("rules", rules.load) == "first"
        with cache.pinned():  # nested: still the outer block's version
            assert cache.get("bot", source.load) == "first"

    gets = redis.info("commandstats")["cmdstat_get"]["calls"] - before
    assert gets == 1
    with cache.pinned():
        assert cache.get("bot", source.load) == "second"
    assert cache.get("bot", source.load) == "second"


def test_a_pinned_block_is_the_thread_s_own():
    cache, source = ConfigCache(), Source()
    seen: list[str] = []

    with cache.pinned():
        assert cache.get("bot", source.load) == "first"
        _changed_elsewhere(source, "second")
        other = threading.Thread(target=lambda: seen.append(cache.get("bot", source.load)))
        other.start()
        other.join()

    assert seen == ["second"]  # another thread, outside any block, reads the counter
