"""The channel layer: channels_redis's, with a cancelled receive that really ends.

A websocket consumer waits for events in `receive()`, a loop of Redis BZPOPMINs. When
its socket closes, the consumer cancels that wait. A cancellation that lands inside
redis-py's blocking read can be swallowed (redis-py #2028): the pop just returns, and
the receive loops on BZPOPMIN forever: a leaked task and Redis connection per closed
socket (seen here once, as a test whose event loop never finished closing).

`Task.cancelling()` still counts a swallowed request, so this layer checks it around
every pop and raises CancelledError as it should.
"""

from __future__ import annotations

import asyncio

from channels_redis.core import RedisChannelLayer


def _cancel_requested() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class ChannelLayer(RedisChannelLayer):
    async def _brpop_with_clean(self, index, channel, timeout):
        if _cancel_requested():
            raise asyncio.CancelledError
        result = await super()._brpop_with_clean(index, channel, timeout)
        if _cancel_requested():
            # A message popped just now is in the backup queue; the next receive of
            # this channel restores it.
            raise asyncio.CancelledError
        return result
