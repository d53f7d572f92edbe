"""Flood limits: token buckets in Redis, checked in one round trip.

`ingest_flood_check` is on the webhook's path (p99 budget: milliseconds), so it costs
one Redis call and no query: a Lua script refills and takes from the sender's and the
bot's buckets together (all or nothing, so a refused flood does not drain the bot's
bucket that other users share), claims the rate-limited notice, and checks the
configuration version in the same call. The limits are read from the database only
when that version moved (`apps.core.config`: any save of the limits, a bot, a profile
or a provider), so an admin change applies to the next message on every process.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError

from apps.core.config import CONFIG_VERSION_KEY
from apps.core.logs import Occasional
from apps.core.redis import get_redis
from apps.guard.models import FloodLimits
from apps.guard.selectors import flood_limits_get

logger = logging.getLogger(__name__)
_unchecked = Occasional(logger)  # with Redis away, every webhook would say so

KEY_PREFIX = "assistant:flood:"
IP_LIMITS = {
    "web_chat": "web_chat_messages_per_minute",
    "api": "api_requests_per_minute",
    "login": "login_attempts_per_minute",
}


@dataclass(frozen=True)
class FloodDecision:
    """Whether one more message or request may pass; when not, for how long and why."""

    allowed: bool
    limit: str = ""  # "user", "bot" or "ip": the bucket that was empty
    retry_after: float = 0.0  # seconds until that bucket has a token again
    notice: bool = False  # tell the sender now (claimed once per notice interval)


ALLOWED = FloodDecision(allowed=True)

# Each bucket keeps how full it is ("level", draining at `rate` per second) rather than
# the tokens left, so a changed capacity applies at once, raised or lowered.
# KEYS: the configuration version, a notice key ("" for none), then one bucket per limit.
# ARGV: the version the caller's limits belong to, the notice interval, then per bucket
# its capacity and drain rate (per second).
# Returns {0} when allowed, {-1, version} when the caller's limits are outdated, else
# {bucket number, version, seconds to wait, notice claimed}.
_SCRIPT = """
local version = redis.call('GET', KEYS[1]) or ''
if version ~= ARGV[1] then return {-1, version} end
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local levels = {}
local refused, wait = 0, 0
for i = 3, #KEYS do
  local capacity, rate = tonumber(ARGV[2 * i - 3]), tonumber(ARGV[2 * i - 2])
  local state = redis.call('HMGET', KEYS[i], 'level', 'at')
  local level, at = tonumber(state[1]) or 0, tonumber(state[2]) or now
  level = math.max(0, level - math.max(0, now - at) * rate)
  levels[i] = level
  if level + 1 > capacity then
    if refused == 0 then refused = i - 2 end
    wait = math.max(wait, (level + 1 - capacity) / rate)
  end
end
if refused == 0 then
  for i = 3, #KEYS do
    local rate = tonumber(ARGV[2 * i - 2])
    redis.call('HSET', KEYS[i], 'level', levels[i] + 1, 'at', now)
    redis.call('PEXPIRE', KEYS[i], math.ceil((levels[i] + 1) / rate * 1000) + 1000)
  end
  return {0}
end
local notice = 0
if KEYS[2] ~= '' and redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then notice = 1 end
return {refused, version, tostring(wait), notice}
"""


class _LimitsCache:
    """This process's copy of the limits and the configuration version they belong to."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version = "\0none"  # matches no real version: the first check loads
        self.limits = FloodLimits()

    def current(self) -> tuple[str, FloodLimits]:
        with self.lock:
            return self.version, self.limits

    def load(self, version: str) -> None:
        # Read after the version: a change in between moves the version again, and the
        # next check loads once more.
        limits = flood_limits_get()
        with self.lock:
            self.version, self.limits = version, limits


_cache = _LimitsCache()


@cache
def _script():
    return get_redis().register_script(_SCRIPT)


Bucket = tuple[str, str, int]  # name ("user", "bot", "ip"), Redis key, tokens per minute


def _take(
    buckets_for: Callable[[FloodLimits], list[Bucket]], notice_key: str = ""
) -> FloodDecision:
    """Take a token from each bucket, or from none; reloads the limits once when outdated."""
    for _attempt in range(2):
        version, limits = _cache.current()
        buckets = [bucket for bucket in buckets_for(limits) if bucket[2]] if limits.enabled else []
        keys = [CONFIG_VERSION_KEY, notice_key]
        args: list[str | int | float] = [version, limits.notice_interval_seconds or 1]
        for _name, key, per_minute in buckets:
            keys.append(key)
            args += [per_minute, per_minute / 60]
        try:
            result = _script()(keys=keys, args=args, client=get_redis())
        except RedisError as error:
            # Answering matters more than limiting: without Redis nothing is limited.
            _unchecked.warning("flood limits not checked (Redis unavailable): %s", error)
            return ALLOWED
        _unchecked.recovered()
        if result[0] == 0:
            return ALLOWED
        if result[0] == -1:
            _cache.load(result[1].decode() if result[1] else "")
            continue
        return FloodDecision(
            allowed=False,
            limit=buckets[result[0] - 1][0],
            retry_after=max(1.0, float(result[2])),
            notice=bool(result[3]),
        )
    return ALLOWED


def ingest_flood_check(*, bot_id, user_id: str) -> FloodDecision:
    """May this platform user's message to this bot be answered (per user, and per bot)?

    Refused messages are still stored (skipped, "rate limited"); `notice` says whether
    this one should tell the user (once per notice interval).
    """
    return _take(
        lambda limits: [
            ("user", f"{KEY_PREFIX}user:{bot_id}:{user_id}", limits.user_messages_per_minute),
            ("bot", f"{KEY_PREFIX}bot:{bot_id}", limits.bot_messages_per_minute),
        ],
        notice_key=f"{KEY_PREFIX}notice:{bot_id}:{user_id}",
    )


def address_flood_check(*, scope: str, address: str) -> FloodDecision:
    """May one more web chat message, API request or login attempt ("web_chat", "api",
    "login") come from this client address?"""
    field = IP_LIMITS[scope]
    return _take(lambda limits: [("ip", f"{KEY_PREFIX}{scope}:{address}", getattr(limits, field))])


@cache
def _networks(entries: tuple[str, ...]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def _trusted(address: str) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in _networks(tuple(settings.TRUSTED_PROXIES)))


def client_address(*, remote_addr: str | None, forwarded_for: str | None = None) -> str:
    """The client's IP address: the peer's, unless the peer is a trusted proxy
    (TRUSTED_PROXIES), then the last X-Forwarded-For hop that is not one."""
    address = remote_addr or "unknown"
    if forwarded_for and _trusted(address):
        for hop in reversed([hop.strip() for hop in forwarded_for.split(",") if hop.strip()]):
            address = hop[:64]  # a key in Redis: a forged header stays short
            if not _trusted(hop):
                break
    return address


def scope_address(scope: Mapping[str, Any]) -> str:
    """The client address of an ASGI (websocket) connection (see `client_address`)."""
    client = scope.get("client") or [None]
    headers = {name.lower(): value for name, value in scope.get("headers", [])}
    forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
    return client_address(remote_addr=client[0], forwarded_for=forwarded or None)
