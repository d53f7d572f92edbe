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
from redis.driver_info import DriverInfo

# Said once: left unset, redis-py looks its own version up in the installed packages'
# metadata for every new connection (milliseconds each; a burst opens hundreds).
DRIVER_INFO = DriverInfo(lib_version=redis.__version__)


@cache
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, health_check_interval=30, driver_info=DRIVER_INFO
    )


@cache
def get_async_redis() -> redis.asyncio.Redis:
    # Bounded: under load, callers queue for a connection instead of opening hundreds.
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        health_check_interval=30,
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        timeout=20,
        driver_info=DRIVER_INFO,
    )
    return redis.asyncio.Redis(connection_pool=pool)


def as_text(value: bytes | str) -> str:
    """A reply as text. These clients return bytes (no decode_responses); redis-py types
    replies as bytes | str, since a client made with decode_responses=True returns str."""
    return value.decode() if isinstance(value, bytes) else value


def _forget_clients() -> None:
    get_redis.cache_clear()
    get_async_redis.cache_clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_clients)
