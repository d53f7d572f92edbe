"""A process says it is alive (a thread, every second); one that stopped is known dead,
and only its own locks are broken."""

from __future__ import annotations

import threading

from django.conf import settings
from django.utils import timezone

from apps.core.aio import process_loop
from apps.core.liveness import PROCESSES_KEY, liveness, owner_of, processes_dead, taken_key
from apps.core.locks import locks_break
from apps.core.redis import get_redis
from tests.factories import last_beat
from tests.fakes.server import wait_for


def test_this_process_beats_and_one_that_stopped_is_dead():
    get_redis().delete(PROCESSES_KEY)  # as after a Redis restart: the next beat says it again
    wait_for(lambda: get_redis().zscore(PROCESSES_KEY, liveness.id), timeout=5)
    last_beat("stopped-host:1:0000", settings.PROCESS_ALIVE_SECONDS + 1)
    last_beat("busy-host:1:0000", settings.PROCESS_ALIVE_SECONDS - 1)
    long_gone = settings.PROCESS_ALIVE_SECONDS + settings.TURN_LOCK_SECONDS + 61
    last_beat("long-gone-host:1:0000", long_gone)

    # Unknown to Redis (never beat, or before its first beat after a restart): not dead.
    deaths = processes_dead()
    assert deaths.dead == {"stopped-host:1:0000"}
    # The first to ask learns when it last beat, once; after that it is only dead.
    [(process_id, beat)] = deaths.just_died.items()
    assert process_id == "stopped-host:1:0000"
    assert 0 <= (timezone.now() - beat).total_seconds() - (settings.PROCESS_ALIVE_SECONDS + 1) < 2
    again = processes_dead()
    assert again.dead == {"stopped-host:1:0000"} and again.just_died == {}
    # Dead long enough for its locks to have expired too: forgotten.
    assert get_redis().zscore(PROCESSES_KEY, "long-gone-host:1:0000") is None


def test_a_lock_names_its_process_and_only_a_dead_process_loses_its_locks():
    redis = get_redis()
    gone = "gone-host:1:0000"
    redis.mset(
        {
            "assistant:turn:1": f"{gone}/aaaa",
            "assistant:turn:2": f"{liveness.id}/bbbb",
            "assistant:turn:3": f"{gone}0/cccc",  # another process whose id starts alike
        }
    )

    assert owner_of(redis.get("assistant:turn:1")) == gone
    assert owner_of(None) is None
    assert locks_break(["assistant:turn:1", "assistant:turn:2", "assistant:turn:3"], gone) == 1
    assert redis.get("assistant:turn:1") is None
    assert redis.get("assistant:turn:2") is not None
    assert redis.get("assistant:turn:3") is not None


def test_what_the_process_took_is_written_even_while_its_event_loop_is_busy():
    frozen, thawed = threading.Event(), threading.Event()

    def freeze() -> None:  # a loop running late: CPU-bound work, a long GC
        frozen.set()
        thawed.wait(30)

    process_loop.loop.call_soon_threadsafe(freeze)
    try:
        assert frozen.wait(10)
        key = taken_key(liveness.id)
        liveness.took(41)
        liveness.took(42)
        wait_for(lambda: {b"41", b"42"} <= get_redis().smembers(key), timeout=5)
        liveness.finished(41)
        wait_for(lambda: b"41" not in get_redis().smembers(key), timeout=5)
        assert get_redis().sismember(key, 42)
    finally:
        thawed.set()
