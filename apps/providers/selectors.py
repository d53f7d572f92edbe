"""Reads: provider health (from Redis) and usage/cost totals (from answers)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.core.redis import as_text, get_redis
from apps.providers.models import Provider
from apps.providers.services import _health_key, provider_cooldown_remaining


@dataclass(frozen=True)
class ProviderHealth:
    """A provider's recent record across all workers."""

    consecutive_failures: int
    last_success_at: dt.datetime | None
    last_error: str
    last_error_at: dt.datetime | None
    cooldown_seconds_left: float


def _timestamp(value: bytes | str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)


def provider_health(*, provider: Provider) -> ProviderHealth:
    """Failures in a row, last success, last error and cooldown of one provider."""
    raw = get_redis().hgetall(_health_key(provider.pk))
    return ProviderHealth(
        consecutive_failures=int(raw.get(b"failures") or 0),
        last_success_at=_timestamp(raw.get(b"last_success_at")),
        last_error=as_text(raw.get(b"last_error") or b""),
        last_error_at=_timestamp(raw.get(b"last_error_at")),
        cooldown_seconds_left=provider_cooldown_remaining(provider=provider),
    )


@dataclass(frozen=True)
class UsageTotals:
    """Answers, tokens and cost over a set of answers."""

    answers: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    estimated_answers: int
    cached_answers: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _day_range(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    return start, start + dt.timedelta(days=1)


def usage_totals(
    *,
    conversation_id: int | None = None,
    bot_id=None,
    sender_id: str | None = None,
    day: dt.date | None = None,
) -> UsageTotals:
    """Token and cost totals of model answers, per conversation, bot, platform user and/or day.

    `sender_id` counts the answers to that platform user's messages; `day` is a
    local date of the answer's completion.
    """
    from apps.conversations.choices import Author, Direction
    from apps.conversations.models import Message

    answers = Message.objects.filter(direction=Direction.OUT, author=Author.ASSISTANT)
    if conversation_id is not None:
        answers = answers.filter(conversation_id=conversation_id)
    if bot_id is not None:
        answers = answers.filter(bot_id=bot_id)
    if sender_id is not None:
        answers = answers.filter(reply_to__sender_id=sender_id)
    if day is not None:
        start, end = _day_range(day)
        answers = answers.filter(model_done_at__gte=start, model_done_at__lt=end)
    totals = answers.aggregate(
        answers=Count("id"),
        prompt_tokens=Coalesce(Sum("prompt_tokens"), 0),
        completion_tokens=Coalesce(Sum("completion_tokens"), 0),
        cost=Sum("cost"),
        estimated=Count("id", filter=Q(tokens_estimated=True)),
        cached=Count("id", filter=Q(cached=True)),
    )
    return UsageTotals(
        answers=totals["answers"],
        prompt_tokens=totals["prompt_tokens"],
        completion_tokens=totals["completion_tokens"],
        cost=totals["cost"] or Decimal(0),
        estimated_answers=totals["estimated"],
        cached_answers=totals["cached"],
    )


@dataclass(frozen=True)
class DailyTokens:
    """Tokens of a bot's model answers on one local day, and of those answering one user."""

    bot: int
    sender: int


def daily_tokens(*, bot_id, sender_id: str | None, day: dt.date) -> DailyTokens:
    """What the daily token budgets read, in one query: the bot's tokens on `day`, and
    those of its answers to `sender_id`'s messages (0 when None; then no join either)."""
    from apps.conversations.choices import Author, Direction
    from apps.conversations.models import Message

    start, end = _day_range(day)
    answers = Message.objects.filter(
        direction=Direction.OUT,
        author=Author.ASSISTANT,
        bot_id=bot_id,
        model_done_at__gte=start,
        model_done_at__lt=end,
    )
    sums = {
        "prompt": Coalesce(Sum("prompt_tokens"), 0),
        "completion": Coalesce(Sum("completion_tokens"), 0),
    }
    if sender_id is not None:
        theirs = Q(reply_to__sender_id=sender_id)
        sums["sender_prompt"] = Coalesce(Sum("prompt_tokens", filter=theirs), 0)
        sums["sender_completion"] = Coalesce(Sum("completion_tokens", filter=theirs), 0)
    totals = answers.aggregate(**sums)
    return DailyTokens(
        bot=totals["prompt"] + totals["completion"],
        sender=totals.get("sender_prompt", 0) + totals.get("sender_completion", 0),
    )


def usage_by_day(*, bot_id=None, days: int = 7) -> list[tuple[dt.date, UsageTotals]]:
    """Totals for each of the last `days` local days, oldest first."""
    today = timezone.localdate()
    return [
        (day, usage_totals(bot_id=bot_id, day=day))
        for day in (today - dt.timedelta(days=offset) for offset in range(days - 1, -1, -1))
    ]
