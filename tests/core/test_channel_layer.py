"""The channel layer ends a receive whose cancellation something below it swallowed."""

from __future__ import annotations

import asyncio
import contextlib

from channels.layers import get_channel_layer


def test_a_receive_whose_cancellation_was_swallowed_still_ends():
    layer = get_channel_layer()

    async def scenario():
        channel = await layer.new_channel()

        async def consumer():
            # Swallowed, as redis-py can inside a blocking read (redis-py #2028).
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(60)
            return await layer.receive(channel)

        task = asyncio.create_task(consumer())
        await asyncio.sleep(0)  # the consumer is waiting
        task.cancel()
        # Without the layer's check this receive loops on BZPOPMIN for ever.
        async with asyncio.timeout(30):
            await asyncio.wait({task})
        return task

    task = asyncio.run(scenario())

    assert task.cancelled()
