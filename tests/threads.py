"""Running the test's own synchronous steps from inside `asyncio.run` scenarios."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from django.db import connections

T = TypeVar("T")


async def in_thread(function: Callable[..., T], *args, **kwargs) -> T:
    """`asyncio.to_thread` for a step that uses the database (the test client, a service).

    The thread belongs to the executor of the event loop `asyncio.run` made, and ends with
    it. Django's test client never closes its connection (it disconnects the
    request_finished handler), so without the `close_all` the pooled PostgreSQL connection
    would die with the thread without going back to the pool: after a few dozen such steps
    the in-process worker waits DB_POOL_TIMEOUT for a connection and every turn fails.
    """

    def call() -> T:
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    return await asyncio.to_thread(call)
