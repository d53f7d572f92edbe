"""Redis clients, one of each per process (locks, cooldowns, counters).

`get_redis()` is the synchronous client for ordinary code; `get_async_redis()` is the
process loop's (apps.core.aio): its connections belong to that loop, so only
coroutines running there may use it.
"""

import os
from functools import cache

import redis
import redis.asyncio
from django.conf import settings


@cache
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, health_check_interval=30)


@cache
def get_async_redis() -> redis.asyncio.Redis:
    # Bounded: under load, callers queue for a connection instead of opening hundreds.
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        settings.REDIS_URL, health_check_interval=30, max_connections=256, timeout=20
    )
    return redis.asyncio.Redis(connection_pool=pool)


def _forget_clients() -> None:
    get_redis.cache_clear()
    get_async_redis.cache_clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_clients)
