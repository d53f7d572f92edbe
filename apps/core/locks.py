"""Redis locks held while work runs, kept alive by a heartbeat (on the process loop).

A turn holds its conversation's lock, a delivery its message's. Each lock lives
`TURN_LOCK_SECONDS` and one task per process renews every lock the process holds a
third of that often, so a lock outlives any long answer or slow send, yet a killed
worker's locks expire within seconds and the sweeper gives their work to another.
A lock is only renewed or released by the token that took it. A token starts with
its process's id (apps.core.liveness), so the sweeper can break the locks of a process
that died without waiting for them to expire (`locks_break`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid

import redis
import redis.asyncio
from django.conf import settings

from apps.core.liveness import liveness
from apps.core.redis import DRIVER_INFO, get_async_redis, get_redis

logger = logging.getLogger(__name__)

_RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_BREAK_SCRIPT = """
local token = redis.call('GET', KEYS[1])
if token and string.sub(token, 1, string.len(ARGV[1])) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class HeldLocks:
    """The locks this process holds; use only from the process loop (apps.core.aio)."""

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Hold nothing (a forked child: the parent's locks and renewal are not its own)."""
        self.tokens: dict[str, str] = {}  # key -> our token
        self._renewer: asyncio.Task | None = None
        self._renewal_client: redis.asyncio.Redis | None = None

    async def acquire(self, key: str) -> bool:
        """Take the lock at `key` if free; it is renewed until `release(key)`."""
        token = f"{liveness.id}/{uuid.uuid4().hex}"
        taken = await get_async_redis().set(key, token, nx=True, ex=settings.TURN_LOCK_SECONDS)
        if not taken:
            return False
        self.tokens[key] = token
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew())
        return True

    async def release(self, key: str) -> None:
        token = self.tokens.pop(key, None)
        if token is None:
            return
        try:
            await get_async_redis().eval(_RELEASE_SCRIPT, 1, key, token)
        except redis.RedisError:
            # No longer renewed, it expires within TURN_LOCK_SECONDS by itself.
            logger.warning("could not release lock %s; it expires by itself", key)

    def _redis(self) -> redis.asyncio.Redis:
        """A connection of its own: renewals never queue behind a busy shared pool."""
        if self._renewal_client is None:
            self._renewal_client = redis.asyncio.Redis.from_url(
                settings.REDIS_URL, driver_info=DRIVER_INFO
            )
        return self._renewal_client

    async def _renew(self) -> None:
        """Every third of a lock's lifetime, extend every lock this process holds."""
        period = settings.TURN_LOCK_SECONDS / 3
        milliseconds = settings.TURN_LOCK_SECONDS * 1000
        while True:
            await asyncio.sleep(period)
            held = list(self.tokens.items())
            if not held:
                continue
            try:
                async with self._redis().pipeline(transaction=False) as pipe:
                    for key, token in held:
                        pipe.eval(_RENEW_SCRIPT, 1, key, token, milliseconds)
                    renewed = await pipe.execute()
            except Exception:  # noqa: BLE001 - try again next period; a lock outlives one miss
                logger.exception("renewing %d locks failed", len(held))
                continue
            for (key, _token), ok in zip(held, renewed, strict=True):
                if not ok and key in self.tokens:
                    # The work goes on; what it records is checked against the database
                    # (a turn's answer is recorded only while still `processing`).
                    logger.warning("lock %s was lost", key)


def locks_break(keys: list[str], process_id: str) -> int:
    """Delete those of `keys` that a (dead) process holds; how many were."""
    with get_redis().pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.eval(_BREAK_SCRIPT, 1, key, f"{process_id}/")
        return sum(int(deleted) for deleted in pipe.execute())


held_locks = HeldLocks()
if hasattr(os, "register_at_fork"):
    # A forked child has its own loop: nothing of the parent's locks or renewal carries over.
    os.register_at_fork(after_in_child=held_locks.forget)
