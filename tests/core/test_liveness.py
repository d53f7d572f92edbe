"""A process says it is alive (a thread, every second); one that stopped is known dead,
and only its own locks are broken."""

from __future__ import annotations

from django.conf import settings

from apps.core.liveness import ALIVE_PREFIX, dead, liveness, owner_of
from apps.core.locks import locks_break
from apps.core.redis import get_redis
from tests.fakes.server import wait_for


def test_this_process_beats_with_a_short_lifetime():
    key = ALIVE_PREFIX + liveness.id
    get_redis().delete(key)  # as after a Redis restart: the next beat says it again

    wait_for(lambda: get_redis().exists(key), timeout=5)
    assert 0 < get_redis().pttl(key) <= settings.PROCESS_ALIVE_SECONDS * 1000
    assert liveness.id == liveness.id  # one id per process
    assert dead({liveness.id, "gone-host:1:0000"}) == {"gone-host:1:0000"}


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
