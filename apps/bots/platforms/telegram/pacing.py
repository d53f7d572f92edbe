"""Pacing sends into one Telegram chat across every process (Telegram's flood limits)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from apps.core.redis import get_async_redis

if TYPE_CHECKING:
    from apps.bots.models import Bot

# About one message per second per chat, 20 per minute in groups (Bot FAQ).
PACE_PRIVATE_SECONDS = 1.0
PACE_GROUP_SECONDS = 3.0
PACE_MAX_WAIT_SECONDS = 15.0
PACE_STREAM_TOLERANCE_SECONDS = 0.3  # a streaming update waits this long at most, else skips

# Reserve the chat's next send slot: returns the seconds to wait, or -wait when the
# wait exceeds the cap (nothing reserved; the caller gives the work back to be retried).
_PACE_SCRIPT = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local free_at = tonumber(redis.call('GET', KEYS[1]) or '0')
local at = math.max(now, free_at)
if at - now > cap then return tostring(-(at - now)) end
local ttl = math.ceil((at + interval - now) * 1000) + 1000
redis.call('SET', KEYS[1], tostring(at + interval), 'PX', ttl)
return tostring(at - now)
"""


class ChatPacer:
    """Spaces sends into one chat across all processes (a Redis slot per chat)."""

    def __init__(self, bot: Bot, chat_id: str):
        self.key = f"assistant:tgpace:{bot.pk}:{chat_id}"
        self.interval = PACE_GROUP_SECONDS if chat_id.startswith("-") else PACE_PRIVATE_SECONDS

    async def reserve(self, *, cap: float = PACE_MAX_WAIT_SECONDS) -> float:
        """Seconds to wait before the reserved slot; negative: busy longer than `cap`."""
        redis = get_async_redis()
        return float(await redis.eval(_PACE_SCRIPT, 1, self.key, time.time(), self.interval, cap))

    async def hold(self, seconds: float) -> None:
        """Telegram said to wait: no process sends into this chat for `seconds`."""
        redis = get_async_redis()
        until = time.time() + seconds
        current = float(await redis.get(self.key) or 0)
        await redis.set(self.key, max(until, current), px=int(seconds * 1000) + 1000)
