"""Writes of routing rules, A/B variants and gray releases; the admin, the API and the
periodic release task all go through these."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext

from apps.audit.services import audit_record, diff, snapshot
from apps.routing.choices import ReleaseEvent, ReleaseState
from apps.routing.models import Release, ReleaseStep, RoutingRule, Variant


@transaction.atomic
def routing_rule_create(*, bots: Iterable | None = None, **fields: Any) -> RoutingRule:
    """Create a validated rule (ValidationError when a field cannot work) for `bots` (none: all)."""
    rule = RoutingRule(**fields)
    rule.full_clean()
    rule.save()
    rule.bots.set(list(bots or []))
    return rule


@transaction.atomic
def routing_rule_update(
    *, rule: RoutingRule, bots: Iterable | None = None, **fields: Any
) -> RoutingRule:
    """Change a rule's fields (and its bots, when given), validated like a new one."""
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.full_clean()
    rule.save()
    if bots is not None:
        rule.bots.set(list(bots))
    return rule


# Variants and releases ----------------------------------------------------------------


@transaction.atomic
def variant_create(**fields: Any) -> Variant:
    """Create a validated A/B variant of a rule or of a bot's default answer."""
    variant = Variant(**fields)
    variant.full_clean()
    variant.save()
    return variant


@transaction.atomic
def variant_update(*, variant: Variant, **fields: Any) -> Variant:
    """Change a variant's fields, validated like a new one."""
    for name, value in fields.items():
        setattr(variant, name, value)
    variant.full_clean()
    variant.save()
    return variant


@transaction.atomic
def release_create(**fields: Any) -> Release:
    """Start a validated release at its first step (recorded in its history)."""
    release = Release(**fields)
    release.full_clean()
    release.save()
    return release_start(release=release)


def release_start(*, release: Release, actor=None, ip_address: str | None = None) -> Release:
    """Put a just-saved release at its first step, running, and record that (history, audit)."""
    release.state = ReleaseState.RUNNING
    release.current_step = 0
    release.step_started_at = timezone.now()
    release.save(update_fields=["state", "current_step", "step_started_at", "updated_at"])
    _release_history(release, event=ReleaseEvent.STARTED, actor=actor, ip_address=ip_address)
    return release


@transaction.atomic
def release_update(*, release: Release, **fields: Any) -> Release:
    """Change a release's settings, validated like a new one."""
    for name, value in fields.items():
        setattr(release, name, value)
    release.full_clean()
    release.save()
    return release


@dataclass(frozen=True)
class StepSample:
    """What the variant under release did since its current step began."""

    answers: int
    errors: int
    negative: int


def release_sample(*, release: Release) -> StepSample:
    """The variant's finished answers since the step began, the failed ones, the rated 👎."""
    from apps.conversations.choices import Rating
    from apps.conversations.models import Feedback
    from apps.routing.selectors import failed_answer, variant_answers

    answers = variant_answers(variant_id=release.variant_id, since=release.step_started_at)
    counts = answers.aggregate(total=Count("id"), failed=Count("id", filter=failed_answer()))
    negative = (
        Feedback.objects.filter(message__in=answers, rating=Rating.NOT_HELPFUL)
        .values("message_id")
        .distinct()
        .count()
    )
    return StepSample(answers=counts["total"], errors=counts["failed"], negative=negative)


@transaction.atomic
def release_evaluate(*, release_id: int, now: datetime | None = None) -> str:
    """Advance, complete or roll back one running release from its step's sample.

    Rates are counted against at least the minimum sample, so a step with few answers is
    rolled back only once its failures (or 👎) would exceed the threshold whatever the rest
    of the sample does, and it moves on only with the full sample. Returns the event, or
    "" when the release stays where it is. Safe to run twice: it locks the row.
    """
    now = now or timezone.now()
    release = Release.objects.select_for_update().get(pk=release_id)
    if release.state != ReleaseState.RUNNING:
        return ""
    sample = release_sample(release=release)
    base = max(sample.answers, release.min_sample, 1)
    reason = ""
    if sample.errors / base > release.max_error_rate:
        reason = gettext("Error rate %(count)d/%(base)d is above %(limit)s.") % {
            "count": sample.errors,
            "base": base,
            "limit": release.max_error_rate,
        }
    elif sample.negative / base > release.max_negative_rate:
        reason = gettext("Negative-feedback rate %(count)d/%(base)d is above %(limit)s.") % {
            "count": sample.negative,
            "base": base,
            "limit": release.max_negative_rate,
        }
    if reason:
        _release_finish(release, winner=release.control, loser=release.variant)
        release.state = ReleaseState.ROLLED_BACK
        event = ReleaseEvent.ROLLED_BACK
    elif sample.answers < release.min_sample:
        return ""
    elif release.current_step + 1 >= len(release.steps):
        _release_finish(release, winner=release.variant, loser=release.control)
        release.state = ReleaseState.COMPLETED
        event = ReleaseEvent.COMPLETED
        reason = gettext("The minimum sample was reached at the last step.")
    else:
        release.current_step += 1
        release.step_started_at = now
        event = ReleaseEvent.ADVANCED
        reason = gettext("The minimum sample was reached within the thresholds.")
    release.save()
    _release_history(release, event=event, sample=sample, reason=reason, at=now)
    return event


def _release_finish(release: Release, *, winner: Variant, loser: Variant) -> None:
    # The split after the release: the winner takes the pair's whole share.
    for variant, weight in ((winner, winner.weight + loser.weight), (loser, 0)):
        before = snapshot(variant)
        variant.weight = weight
        variant.save(update_fields=["weight", "updated_at"])
        audit_record(
            action="variant.update",
            target=variant,
            changes=diff(before, snapshot(variant)),
        )


def _release_history(
    release: Release,
    *,
    event: str,
    sample: StepSample | None = None,
    reason: str = "",
    at: datetime | None = None,
    actor=None,
    ip_address: str | None = None,
) -> None:
    step = ReleaseStep.objects.create(
        release=release,
        event=event,
        percent=release.percent,
        answers=sample.answers if sample else 0,
        errors=sample.errors if sample else 0,
        negative=sample.negative if sample else 0,
        reason=reason,
        at=at or timezone.now(),
    )
    audit_record(
        action=f"release.{event}",
        actor=actor,
        target=release,
        changes={
            "state": release.state,
            "step": release.current_step,
            "percent": step.percent,
            "answers": step.answers,
            "errors": step.errors,
            "negative": step.negative,
            "reason": reason,
        },
        ip_address=ip_address,
    )


def releases_evaluate() -> dict[str, int]:
    """Evaluate every running release (the periodic task); how many took each event."""
    outcome: dict[str, int] = {}
    for release_id in Release.objects.filter(state=ReleaseState.RUNNING).values_list(
        "pk", flat=True
    ):
        event = release_evaluate(release_id=release_id)
        if event:
            outcome[event] = outcome.get(event, 0) + 1
    return outcome


@transaction.atomic
def release_pause(*, release: Release, actor=None, ip_address: str | None = None) -> bool:
    """Stop a running release's steps where they are (its split stays); False if not running."""
    release = Release.objects.select_for_update().get(pk=release.pk)
    if release.state != ReleaseState.RUNNING:
        return False
    release.state = ReleaseState.PAUSED
    release.save(update_fields=["state", "updated_at"])
    _release_history(release, event=ReleaseEvent.PAUSED, actor=actor, ip_address=ip_address)
    return True


@transaction.atomic
def release_resume(*, release: Release, actor=None, ip_address: str | None = None) -> bool:
    """Let a paused release move on again; its step's sample starts afresh."""
    release = Release.objects.select_for_update().get(pk=release.pk)
    if release.state != ReleaseState.PAUSED:
        return False
    release.state = ReleaseState.RUNNING
    release.step_started_at = timezone.now()
    release.save(update_fields=["state", "step_started_at", "updated_at"])
    _release_history(release, event=ReleaseEvent.RESUMED, actor=actor, ip_address=ip_address)
    return True
