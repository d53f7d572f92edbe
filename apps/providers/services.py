"""Provider health (shared by all worker processes through Redis) and profile probes.

Health is advice, not a record: with Redis unreachable a call is neither counted nor
refused (no cooldown is known), and an answer the model gave is never lost to it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

from apps.core.logs import Occasional
from apps.core.metrics import provider_cooldown_record
from apps.core.redis import get_redis
from apps.providers.models import ModelProfile, Provider

logger = logging.getLogger(__name__)
# Health is advice: with Redis away, every model call would say so.
_success_not_noted = Occasional(logger)
_failure_not_counted = Occasional(logger)


def _health_key(provider_id: int) -> str:
    return f"assistant:provider:{provider_id}:health"


def _cooldown_key(provider_id: int) -> str:
    return f"assistant:provider:{provider_id}:cooldown"


def provider_failure_record(*, provider: Provider, error: str) -> bool:
    """Count a failed call; after `cooldown_after_failures` in a row start a cooldown.

    Returns True when the provider is now cooling down.
    """
    client = get_redis()
    key = _health_key(provider.pk)
    try:
        pipe = client.pipeline()
        pipe.hincrby(key, "failures", 1)
        pipe.hset(key, mapping={"last_error": error[:500], "last_error_at": time.time()})
        failures = pipe.execute()[0]
        _failure_not_counted.recovered()
        if failures >= provider.cooldown_after_failures and provider.cooldown_seconds > 0:
            client.set(_cooldown_key(provider.pk), time.time(), ex=provider.cooldown_seconds)
            provider_cooldown_record(provider=provider)
            return True
    except redis.RedisError as problem:
        _failure_not_counted.warning(
            "could not count a failure of provider %s: %s", provider.pk, problem
        )
    return False


def provider_success_record(*, provider: Provider) -> None:
    """A call succeeded: the failure streak ends."""
    try:
        get_redis().hset(
            _health_key(provider.pk), mapping={"failures": 0, "last_success_at": time.time()}
        )
        _success_not_noted.recovered()
    except redis.RedisError as problem:
        _success_not_noted.warning(
            "could not note a success of provider %s: %s", provider.pk, problem
        )


def provider_cooldown_remaining(*, provider: Provider) -> float:
    """Seconds the provider is still skipped for (0 when it is not cooling down)."""
    try:
        milliseconds = get_redis().pttl(_cooldown_key(provider.pk))
    except redis.RedisError as problem:
        logger.warning("could not read the cooldown of provider %s: %s", provider.pk, problem)
        return 0.0
    return max(0.0, milliseconds / 1000) if milliseconds and milliseconds > 0 else 0.0


def provider_cooldown_clear(*, provider: Provider) -> None:
    """End a cooldown now (an admin knows the provider is back) and reset the failure streak."""
    client = get_redis()
    client.delete(_cooldown_key(provider.pk))
    client.hset(_health_key(provider.pk), "failures", 0)


@dataclass(frozen=True)
class ProbeResult:
    """What a test call of a profile showed: latency to first token, total time, the reply."""

    ok: bool
    first_token_seconds: float | None
    total_seconds: float
    reply: str
    profile_name: str
    error: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_estimated: bool = False


PROBE_PROMPT = "Reply with one short sentence: are you there?"


def profile_probe(*, profile: ModelProfile, prompt: str = PROBE_PROMPT) -> ProbeResult:
    """Send a probe to this profile alone (no fallback) and time it."""
    from apps.providers.client import ChatMessage, ModelError, stream_reply

    started = time.monotonic()
    try:
        reply = stream_reply(
            profile=profile,
            messages=[ChatMessage("user", prompt)],
            on_delta=lambda delta: None,
            use_fallbacks=False,
        )
    except ModelError as error:
        return ProbeResult(
            ok=False,
            first_token_seconds=None,
            total_seconds=time.monotonic() - started,
            reply="",
            profile_name=profile.name,
            error=str(error),
        )
    return ProbeResult(
        ok=not reply.interrupted,
        first_token_seconds=reply.first_token_seconds,
        total_seconds=time.monotonic() - started,
        reply=reply.text,
        profile_name=profile.name,
        prompt_tokens=reply.usage.prompt_tokens,
        completion_tokens=reply.usage.completion_tokens,
        tokens_estimated=reply.usage.estimated,
    )


def usage_cost(*, profile: ModelProfile, prompt_tokens: int, completion_tokens: int):
    """The price of one answer from the profile's prices per 1K input/output tokens."""
    from decimal import Decimal

    cost = (
        Decimal(prompt_tokens) * profile.price_input_per_1k
        + Decimal(completion_tokens) * profile.price_output_per_1k
    ) / Decimal(1000)
    return cost.quantize(Decimal("0.000001"))
