"""Reads of routing: the compiled rule set every decision uses (cached per process), the
variants and releases, and the dashboard's comparison of variants."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext

from apps.core.config import config_cache
from apps.providers.models import ModelProfile
from apps.routing.choices import Action
from apps.routing.models import Release, RoutingRule, Variant
from apps.routing.rules import RuleSet, ruleset_compile
from apps.routing.variants import ACTIVE_RELEASE_STATES, owner_key, splits_compile

RULESET_KEY = ("routing", "ruleset")
LATENCY_WINDOW = 5000  # answers per variant whose latencies the dashboard's percentiles read


def ruleset_get() -> RuleSet:
    """The enabled rules, compiled, from this process's cache (invalidated on any change).

    Shared between threads and turns: read it, never change it.
    """
    return config_cache.get(RULESET_KEY, ruleset_load)


def ruleset_load() -> RuleSet:
    """The enabled rules, variants and active releases compiled afresh (a few queries)."""
    rules = list(RoutingRule.objects.filter(enabled=True).order_by("priority", "id"))
    bots: dict[int, list[str]] = {rule.pk: [] for rule in rules}
    for rule_id, bot_id in RoutingRule.bots.through.objects.filter(
        routingrule_id__in=bots
    ).values_list("routingrule_id", "bot_id"):
        bots[rule_id].append(str(bot_id))
    # The skill's kind is recorded on decisions; its (encrypted) settings are not needed.
    variants = list(
        Variant.objects.select_related("skill_instance").defer("skill_instance__config")
    )
    releases = list(Release.objects.filter(state__in=ACTIVE_RELEASE_STATES))
    profile_ids = {rule.profile_id for rule in rules if rule.profile_id is not None}
    profile_ids |= {variant.profile_id for variant in variants if variant.profile_id is not None}
    profiles = {
        profile.pk: profile
        for profile in ModelProfile.objects.select_related("provider", "fallback__provider").filter(
            pk__in=profile_ids
        )
    }
    return ruleset_compile(rules, bots, profiles, splits_compile(variants, releases))


def routing_rule_list():
    """Every rule, enabled or not, in the order they are tried."""
    return RoutingRule.objects.prefetch_related("bots").select_related("profile", "skill_instance")


def variant_list():
    """Every A/B variant with its rule or bot and its profile or configured skill."""
    return Variant.objects.select_related("rule", "bot", "profile", "skill_instance")


def release_list():
    """Every release, newest first, with its variants and history."""
    return Release.objects.select_related(
        "variant__rule", "variant__bot", "control"
    ).prefetch_related("history")


# The dashboard's comparison of variants ---------------------------------------------


def variant_answers(*, variant_id: int, since: datetime):
    """A variant's finished answers since `since`: a profile variant's model answers
    (delivered or failed), a skill variant's skill replies (delivered or failed; they are
    the system's messages, with no model times or tokens)."""
    from apps.conversations.choices import Author, Direction, MessageStatus
    from apps.conversations.models import Message

    return Message.objects.filter(
        Q(author=Author.ASSISTANT) | Q(author=Author.SYSTEM, decision__action=Action.SKILL),
        direction=Direction.OUT,
        decision__variant_id=variant_id,
        received_at__gte=since,  # when the answer was begun
        status__in=[MessageStatus.DELIVERED, MessageStatus.FAILED],
    )


def failed_answer() -> Q:
    """Which of `variant_answers` failed: the model's failed answers, and the skill replies
    that told the user the skill failed (delivered, but the skill's run failed)."""
    from apps.conversations.choices import MessageStatus

    return Q(status=MessageStatus.FAILED) | Q(
        decision__action=Action.SKILL, attempts__0__outcome="failed"
    )


def variant_owners() -> list[tuple[str, str]]:
    """The rules and bots with A/B variants, as (owner key, label), for choosing one."""
    owners: dict[str, str] = {}
    for variant in Variant.objects.select_related("rule", "bot").order_by("rule_id", "bot_id"):
        key = owner_key(rule_id=variant.rule_id, bot_id=variant.bot_id)
        if variant.rule_id is not None:
            owners[key] = gettext("Rule: %(name)s") % {"name": variant.owner_label()}
        else:
            owners[key] = gettext("Bot: %(name)s") % {"name": variant.owner_label()}
    return sorted(owners.items(), key=lambda item: item[1])


def variant_comparison(
    *, owner: str, days: int = 14, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Each variant of a rule or bot ("rule:<id>" or "bot:<uuid>") side by side over the
    last `days` days: its answers, error rate (failed answers), model time and time to the
    first token (p50, p95), 👍 and 👎, tokens and cost."""
    from apps.conversations.choices import MessageStatus, Rating
    from apps.conversations.models import Feedback
    from apps.conversations.selectors import percentile

    kind, _sep, ident = owner.partition(":")
    if kind not in ("rule", "bot") or not ident:
        return []
    try:
        variants = list(
            Variant.objects.filter(**{f"{kind}_id": ident})
            .select_related("profile", "skill_instance")
            .order_by("id")
        )
    except (ValueError, ValidationError):  # not an id: nothing to compare
        return []
    since = (now or timezone.now()) - timedelta(days=days)
    rows = []
    for variant in variants:
        answers = variant_answers(variant_id=variant.pk, since=since)
        totals = answers.aggregate(
            answers=Count("id"),
            failed=Count("id", filter=failed_answer()),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            cost=Sum("cost"),
        )
        ratings = dict(
            Feedback.objects.filter(message__in=answers)
            .values_list("rating")
            .annotate(count=Count("id"))
            .values_list("rating", "count")
        )
        model_seconds: list[float] = []
        first_token_seconds: list[float] = []
        for started, first, done in (
            answers.filter(status=MessageStatus.DELIVERED, model_started_at__isnull=False)
            .order_by("-id")
            .values_list("model_started_at", "first_token_at", "model_done_at")[:LATENCY_WINDOW]
        ):
            if started is None:
                continue  # excluded by the query; the column is nullable
            if done is not None:
                model_seconds.append((done - started).total_seconds())
            if first is not None:
                first_token_seconds.append((first - started).total_seconds())
        helpful = ratings.get(Rating.HELPFUL, 0)
        not_helpful = ratings.get(Rating.NOT_HELPFUL, 0)
        count = totals["answers"]
        rows.append(
            {
                "variant": variant.name,
                "variant_id": variant.pk,
                "weight": variant.weight,
                # A skill's replies have no model times, tokens or cost, and carry no
                # feedback buttons: the table shows "—" for those.
                "skill": variant.skill_instance_id is not None,
                "answers_with": variant.answers_with(),
                "answers": count,
                "failed": totals["failed"],
                "error_rate": totals["failed"] / count if count else None,
                "model_p50": percentile(model_seconds, 0.5),
                "model_p95": percentile(model_seconds, 0.95),
                "first_token_p50": percentile(first_token_seconds, 0.5),
                "first_token_p95": percentile(first_token_seconds, 0.95),
                "helpful": helpful,
                "not_helpful": not_helpful,
                "helpful_ratio": helpful / (helpful + not_helpful)
                if helpful + not_helpful
                else None,
                "prompt_tokens": totals["prompt"] or 0,
                "completion_tokens": totals["completion"] or 0,
                "cost": float(totals["cost"] or Decimal(0)),
            }
        )
    return rows
