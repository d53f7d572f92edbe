"""Reads for conversations and messages: the API, the live console, history, dashboard."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Count,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.bots.choices import ReplyLanguage
from apps.conversations.choices import Author, Direction, MessageStatus, Rating
from apps.conversations.models import Conversation, Feedback, Message
from apps.core.i18n import default_language, language_detect
from apps.routing.choices import Failure

STATE_AI = "ai"
STATE_TAKEN_OVER = "taken_over"
STATE_WAITING = "waiting"  # handed off to staff by a rule; nobody has taken it yet
STATE_FAILED = "failed"
STATE_LABELS = {
    STATE_AI: _("AI"),
    STATE_TAKEN_OVER: _("Taken over"),
    STATE_WAITING: _("Waiting for staff"),
    STATE_FAILED: _("Failed"),
}
FAILURE_LABELS = dict(Failure.choices)
# How far back a reply looks for a message whose language can be told (e.g. after a photo).
LANGUAGE_LOOKBACK_MESSAGES = 10


def reply_language(*, bot, message: Message | None) -> str:
    """The language of the bot's own reply to `message`: "zh-hans" or "en".

    The bot's reply language, or with "auto" the language `message` is written in; when
    that can't be told (a photo, a sticker, "/help"), the language of the user's latest
    message in the conversation that tells it, else LANGUAGE_CODE.
    """
    if bot.reply_language != ReplyLanguage.AUTO:
        return bot.reply_language
    if message is not None:
        detected = language_detect(message.text)
        if detected is not None:
            return detected
        earlier = (
            Message.objects.filter(
                conversation_id=message.conversation_id, direction=Direction.IN, id__lt=message.pk
            )
            .exclude(text="")
            .order_by("-id")
            .values_list("text", flat=True)[:LANGUAGE_LOOKBACK_MESSAGES]
        )
        for text in earlier:
            detected = language_detect(text)
            if detected is not None:
                return detected
    return default_language()


def conversation_list(*, bot_id=None, platform: str | None = None) -> QuerySet[Conversation]:
    """Conversations, newest activity first, optionally for one bot or platform."""
    conversations = Conversation.objects.select_related("bot")
    if bot_id:
        conversations = conversations.filter(bot_id=bot_id)
    if platform:
        conversations = conversations.filter(bot__platform=platform)
    return conversations.order_by("-last_activity_at", "-id")


def message_list(*, conversation_id: int) -> QuerySet[Message]:
    """A conversation's messages in order."""
    return Message.objects.filter(conversation_id=conversation_id).order_by("id")


def _with_summary_fields(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    latest = Message.objects.filter(conversation=OuterRef("pk")).order_by("-id")
    latest_inbound = latest.filter(direction=Direction.IN)
    # What was last said: an answer still being written (no text yet) is not shown.
    latest_said = latest.exclude(text="")
    feedback = Feedback.objects.filter(message__conversation=OuterRef("pk"))
    return conversations.select_related("bot", "handled_by").annotate(
        last_text=Subquery(latest_said.values("text")[:1]),
        last_author=Subquery(latest_said.values("author")[:1]),
        last_inbound_status=Subquery(latest_inbound.values("status")[:1]),
        helpful_count=Subquery(
            feedback.filter(rating=Rating.HELPFUL)
            .values("message__conversation")
            .annotate(n=Count("id"))
            .values("n")[:1]
        ),
        not_helpful_count=Subquery(
            feedback.filter(rating=Rating.NOT_HELPFUL)
            .values("message__conversation")
            .annotate(n=Count("id"))
            .values("n")[:1]
        ),
    )


def _state(conversation: Conversation) -> str:
    # A routing rule's hand-off sets taken_over_at with nobody holding it yet: it waits
    # for staff (unless the user has reset it meanwhile: then nobody is waiting).
    if conversation.handled_by_id is not None:
        return STATE_TAKEN_OVER
    if conversation.taken_over_at is not None:
        return STATE_TAKEN_OVER if conversation.closed_at is not None else STATE_WAITING
    if getattr(conversation, "last_inbound_status", None) == MessageStatus.FAILED:
        return STATE_FAILED
    return STATE_AI


def conversation_user(conversation: Conversation) -> str:
    """Who the conversation is with: participants' names, else the chat id."""
    return ", ".join(conversation.participants.values()) or conversation.chat_id


def _summary(conversation: Conversation) -> dict[str, Any]:
    state = _state(conversation)
    # Annotations added by _with_summary_fields, not model fields.
    annotated: Any = conversation
    return {
        "id": conversation.pk,
        "bot_id": str(conversation.bot_id),
        "bot": conversation.bot.name,
        "platform": conversation.bot.platform,
        "platform_label": conversation.bot.get_platform_display(),
        "user": conversation_user(conversation),
        "chat_type": conversation.chat_type,
        "last_text": (annotated.last_text or "")[:200],
        "last_author": annotated.last_author or "",
        "last_author_label": (
            str(Author(annotated.last_author).label) if annotated.last_author else ""
        ),
        "last_activity_at": conversation.last_activity_at.isoformat(),
        "state": state,
        "state_label": str(STATE_LABELS[state]),
        "handled_by": conversation.handled_by.get_username() if conversation.handled_by else "",
        "closed": conversation.closed_at is not None,
        "helpful": annotated.helpful_count or 0,
        "not_helpful": annotated.not_helpful_count or 0,
    }


def console_conversations(
    *, bot_id=None, platform: str = "", rating: str = "", limit: int = 100
) -> list[dict[str, Any]]:
    """The console's list: summary rows, newest activity first (optionally only rated ones)."""
    search = HistoryFilter(bot_id=bot_id, platform=platform or "", rating=rating or "")
    conversations = history_search(search=search)
    return [_summary(conversation) for conversation in conversations[:limit]]


def conversations_waiting() -> list[int]:
    """The open conversations handed off to staff that nobody has taken yet, newest first."""
    return list(
        Conversation.objects.filter(
            handled_by__isnull=True, taken_over_at__isnull=False, closed_at__isnull=True
        )
        .order_by("-taken_over_at")
        .values_list("pk", flat=True)[:WAITING_LIMIT]
    )


WAITING_LIMIT = 500


def conversation_summary(*, conversation_id: int) -> dict[str, Any] | None:
    """One conversation's console row (what ConversationEvent carries), or None."""
    conversation = _with_summary_fields(Conversation.objects.filter(pk=conversation_id)).first()
    return _summary(conversation) if conversation else None


def conversation_summaries(*, conversation_ids: list[int]) -> list[dict[str, Any]]:
    """Several conversations' console rows in one query (ids that no longer exist are left out)."""
    conversations = _with_summary_fields(Conversation.objects.filter(pk__in=conversation_ids))
    return [_summary(conversation) for conversation in conversations]


# History ----------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryFilter:
    """The history page's search: every field optional."""

    bot_id: Any = None
    platform: str = ""
    user: str = ""
    date_from: date | None = None
    date_to: date | None = None
    text: str = ""
    rating: str = ""  # helpful | not_helpful | any | none
    failed: bool = False


def history_search(*, search: HistoryFilter) -> QuerySet[Conversation]:
    """Conversations matching a history search, newest activity first, with summaries."""
    conversations = conversation_list(bot_id=search.bot_id or None, platform=search.platform)
    if search.user:
        senders = Message.objects.filter(sender_id=search.user).values("conversation_id")
        conversations = conversations.filter(
            Q(participants__icontains=search.user)
            | Q(chat_id=search.user)
            | Q(pk__in=Subquery(senders))
        )
    if search.date_from:
        conversations = conversations.filter(last_activity_at__date__gte=search.date_from)
    if search.date_to:
        conversations = conversations.filter(started_at__date__lte=search.date_to)
    if search.text:
        matching = Message.objects.filter(text__icontains=search.text).values("conversation_id")
        conversations = conversations.filter(pk__in=Subquery(matching))
    if search.rating in Rating.values:
        rated = Feedback.objects.filter(rating=search.rating).values("message__conversation_id")
        conversations = conversations.filter(pk__in=Subquery(rated))
    elif search.rating == "any":
        rated = Feedback.objects.values("message__conversation_id")
        conversations = conversations.filter(pk__in=Subquery(rated))
    elif search.rating == "none":
        rated = Feedback.objects.values("message__conversation_id")
        conversations = conversations.exclude(pk__in=Subquery(rated))
    if search.failed:
        failed = Message.objects.filter(status=MessageStatus.FAILED).values("conversation_id")
        conversations = conversations.filter(pk__in=Subquery(failed))
    return _with_summary_fields(conversations)


def history_rows(*, conversations: Iterable[Conversation]) -> list[dict[str, Any]]:
    """Summary rows for a page of history results."""
    return [_summary(conversation) for conversation in conversations]


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def message_latency(message: Message) -> dict[str, float | None]:
    """An answer's latencies in seconds: to the first token, model total, to delivery."""
    received = message.reply_to.received_at if message.reply_to else None
    return {
        "first_token": _seconds(message.model_started_at, message.first_token_at),
        "model": _seconds(message.model_started_at, message.model_done_at),
        "total": _seconds(received or message.model_started_at, message.delivered_at),
        "delivery": _seconds(message.model_done_at, message.delivered_at),
    }


def transcript(*, conversation_id: int) -> list[dict[str, Any]]:
    """A conversation's messages with each answer's profile, latency, tokens and ratings."""
    messages = (
        Message.objects.filter(conversation_id=conversation_id)
        .select_related("profile", "reply_to")
        .prefetch_related("feedback")
        .order_by("id")
    )
    rows = []
    for message in messages:
        ratings = [feedback.rating for feedback in message.feedback.all()]
        failure = (message.decision or {}).get("failure", "")
        rows.append(
            {
                "message": message,
                # Why the assistant did not answer as routed (a routing code), in words.
                "failure": str(FAILURE_LABELS.get(failure, failure)) if failure else "",
                "latency": message_latency(message) if message.direction == Direction.OUT else {},
                "helpful": ratings.count(Rating.HELPFUL),
                "not_helpful": ratings.count(Rating.NOT_HELPFUL),
            }
        )
    return rows


def export_messages(*, conversations: QuerySet[Conversation]) -> QuerySet[Message]:
    """The messages of a set of conversations, grouped by conversation, for streaming exports."""
    latest_rating = Feedback.objects.filter(message=OuterRef("pk")).order_by("-created_at")
    return (
        Message.objects.filter(conversation_id__in=conversations.values("pk"))
        .select_related("conversation", "bot", "profile")
        .annotate(rating=Subquery(latest_rating.values("rating")[:1]))
        .order_by("conversation_id", "id")
    )


# Dashboard --------------------------------------------------------------------

DASHBOARD_LATENCY_WINDOW = 5000  # answers: percentiles are computed in Python over these


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def dashboard_stats(*, days: int = 14, now: datetime | None = None) -> dict[str, Any]:
    """Per-bot numbers for the dashboard over the last `days` days."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    messages = Message.objects.filter(received_at__gte=since)

    # Every local day the period touches, so each counted message falls on a label.
    first_day, last_day = timezone.localdate(since), timezone.localdate(now)
    day_labels = [
        (first_day + timedelta(days=n)).isoformat() for n in range((last_day - first_day).days + 1)
    ]
    # Grouped by bot id: two bots may share a name. The chart counts what the table's
    # "Received" column counts: users' messages.
    names: dict[Any, str] = {}
    per_day: dict[Any, dict[str, int]] = defaultdict(dict)
    for row in (
        messages.filter(direction=Direction.IN)
        .annotate(day=TruncDate("received_at"))
        .values("day", "bot_id", "bot__name")
        .annotate(count=Count("id"))
        .order_by("day")
    ):
        names[row["bot_id"]] = row["bot__name"]
        per_day[row["bot_id"]][row["day"].isoformat()] = row["count"]

    bots: dict[Any, dict[str, Any]] = defaultdict(
        lambda: {
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost": Decimal(0),
            "inbound": 0,
            "failed": 0,
            "helpful": 0,
            "not_helpful": 0,
            "model_seconds": [],
            "overhead_seconds": [],
        }
    )
    for usage in (
        messages.filter(direction=Direction.OUT, author=Author.ASSISTANT)
        .values("bot_id", "bot__name")
        .annotate(
            prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), cost=Sum("cost")
        )
    ):
        names[usage["bot_id"]] = usage["bot__name"]
        stats = bots[usage["bot_id"]]
        stats["prompt_tokens"] = usage["prompt"] or 0
        stats["completion_tokens"] = usage["completion"] or 0
        stats["cost"] = usage["cost"] or Decimal(0)
    for inbound in (
        messages.filter(direction=Direction.IN)
        .values("bot_id", "bot__name")
        .annotate(
            total=Count("id"),
            failed=Count("id", filter=Q(status=MessageStatus.FAILED)),
        )
    ):
        names[inbound["bot_id"]] = inbound["bot__name"]
        bots[inbound["bot_id"]]["inbound"] = inbound["total"]
        bots[inbound["bot_id"]]["failed"] = inbound["failed"]
    for rating in (
        Feedback.objects.filter(message__received_at__gte=since)
        .values("message__bot_id", "message__bot__name", "rating")
        .annotate(count=Count("id"))
    ):
        names[rating["message__bot_id"]] = rating["message__bot__name"]
        bots[rating["message__bot_id"]][rating["rating"]] = rating["count"]

    answers = (
        messages.filter(
            direction=Direction.OUT,
            author=Author.ASSISTANT,
            status=MessageStatus.DELIVERED,
            model_started_at__isnull=False,
            model_done_at__isnull=False,
            delivered_at__isnull=False,
        )
        .values_list(
            "bot_id",
            "bot__name",
            "reply_to__received_at",
            "model_started_at",
            "model_done_at",
            "delivered_at",
        )
        .order_by("-id")[:DASHBOARD_LATENCY_WINDOW]
    )
    for bot_id, bot_name, received, started, done, delivered in answers:
        if started is None or done is None or delivered is None:
            continue  # excluded by the query; the columns are nullable
        names[bot_id] = bot_name
        stats = bots[bot_id]
        stats["model_seconds"].append((done - started).total_seconds())
        waited = (started - received).total_seconds() if received else 0.0
        stats["overhead_seconds"].append(max(0.0, waited) + (delivered - done).total_seconds())

    rows = []
    for bot_id in sorted(set(bots) | set(per_day), key=lambda pk: (names[pk], str(pk))):
        stats = bots[bot_id]
        rated = stats["helpful"] + stats["not_helpful"]
        rows.append(
            {
                "bot": names[bot_id],
                "bot_id": str(bot_id),
                "received_per_day": [per_day[bot_id].get(day, 0) for day in day_labels],
                "prompt_tokens": stats["prompt_tokens"],
                "completion_tokens": stats["completion_tokens"],
                "cost": float(stats["cost"]),
                "inbound": stats["inbound"],
                "failed": stats["failed"],
                "error_rate": stats["failed"] / stats["inbound"] if stats["inbound"] else None,
                "helpful": stats["helpful"],
                "not_helpful": stats["not_helpful"],
                "helpful_ratio": stats["helpful"] / rated if rated else None,
                "answers": len(stats["model_seconds"]),
                "model_p50": percentile(stats["model_seconds"], 0.5),
                "model_p95": percentile(stats["model_seconds"], 0.95),
                "overhead_p50": percentile(stats["overhead_seconds"], 0.5),
                "overhead_p95": percentile(stats["overhead_seconds"], 0.95),
            }
        )
    return {"days": day_labels, "bots": rows, "since": since.isoformat()}
