"""Reads for the pages of the core app (the landing page, the admin's home page)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from redis.exceptions import RedisError

from apps.bots.choices import ConnectionMode, Platform
from apps.bots.models import Bot


def web_chat_bots_list() -> QuerySet[Bot]:
    """The web-chat bots anyone may talk to now (enabled), by name."""
    return Bot.objects.filter(platform=Platform.WEB, enabled=True).order_by("name")


@dataclass(frozen=True)
class BotState:
    """One bot as the admin's home page shows it."""

    bot: Bot
    connection: str  # "web" | "webhook" | "connected" | "no_connector"
    heartbeat_age_seconds: float | None
    inbound_today: int
    answers_today: int
    failed_today: int


@dataclass(frozen=True)
class ProviderState:
    """One provider with its recent health (shared by all workers through Redis)."""

    provider: Any
    health: Any  # apps.providers.selectors.ProviderHealth


@dataclass(frozen=True)
class AdminOverview:
    """What a new operator needs first: bots, providers, workers and today's traffic."""

    bots: list[BotState]
    providers: list[ProviderState]
    profiles: int
    workers: int | None  # None: Redis could not be asked
    inbound_today: int
    answers_today: int
    failed_today: int


def admin_overview(*, now: datetime | None = None) -> AdminOverview:
    """The state of every bot, provider and worker, and today's messages (local day)."""
    from apps.bots.platforms import connector_paths
    from apps.conversations.choices import Author, Direction, MessageStatus
    from apps.conversations.models import Message
    from apps.core.health import worker_heartbeats
    from apps.providers.models import ModelProfile, Provider
    from apps.providers.selectors import provider_health

    now = now or timezone.now()
    start = timezone.make_aware(datetime.combine(timezone.localdate(now), time.min))
    today = Message.objects.filter(received_at__gte=start)
    counts = {
        row["bot_id"]: row
        for row in today.values("bot_id").annotate(
            inbound=Count("id", filter=Q(direction=Direction.IN)),
            answers=Count(
                "id",
                filter=Q(
                    direction=Direction.OUT,
                    author=Author.ASSISTANT,
                    status=MessageStatus.DELIVERED,
                ),
            ),
            # As the console's dashboard counts them: users' messages left unanswered.
            failed=Count("id", filter=Q(direction=Direction.IN, status=MessageStatus.FAILED)),
        )
    }
    stale_after = settings.CONNECTORS_STALL_SECONDS
    bots = []
    for bot in Bot.objects.select_related("profile").order_by("name"):
        age = (
            (now - bot.connector_heartbeat_at).total_seconds()
            if bot.connector_heartbeat_at
            else None
        )
        if bot.platform == Platform.WEB:
            connection = "web"
        elif (
            bot.connection_mode != ConnectionMode.PERSISTENT
            or bot.platform not in connector_paths()
        ):
            connection = "webhook"
        elif age is not None and age <= stale_after:
            connection = "connected"
        else:
            connection = "no_connector"
        row: Mapping[str, Any] = counts.get(bot.pk, {})
        bots.append(
            BotState(
                bot=bot,
                connection=connection,
                heartbeat_age_seconds=age,
                inbound_today=row.get("inbound", 0),
                answers_today=row.get("answers", 0),
                failed_today=row.get("failed", 0),
            )
        )
    try:
        providers = [
            ProviderState(provider=provider, health=provider_health(provider=provider))
            for provider in Provider.objects.order_by("name")
        ]
        stale_worker = settings.WORKER_HEARTBEAT_SECONDS * 3
        workers: int | None = sum(1 for age in worker_heartbeats().values() if age <= stale_worker)
    except RedisError:
        providers = [
            ProviderState(provider=provider, health=None)
            for provider in Provider.objects.order_by("name")
        ]
        workers = None
    return AdminOverview(
        bots=bots,
        providers=providers,
        profiles=ModelProfile.objects.count(),
        workers=workers,
        inbound_today=sum(state.inbound_today for state in bots),
        answers_today=sum(state.answers_today for state in bots),
        failed_today=sum(state.failed_today for state in bots),
    )
