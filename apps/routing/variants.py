"""A/B splits and gray releases, compiled for deciding: which variant answers a conversation.

A rule (or a bot's default answer) with variants answers each conversation with one of
them. The choice is a deterministic hash of the conversation id and the rule (or bot),
read as a point in [0, 1) and looked up in the variants' cumulative shares (weight over
the sum of weights, in id order). Nothing is stored: every worker computes the same
variant for a conversation with no coordination and no write in the turn's path, and the
"Which rule answers this?" page shows the same answer. The conversation keeps its variant
as long as the weights stay the same.

A running (or paused) release takes the shares of its variant and its control together
and gives the variant the current step's percentage of them, placed first: when the step
rises, conversations only move from the control to the variant, never back and forth.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apps.routing.choices import Action, ReleaseState

ACTIVE_RELEASE_STATES = (ReleaseState.RUNNING, ReleaseState.PAUSED)


def owner_key(*, rule_id: int | None = None, bot_id: Any = None) -> str:
    """The name of a variant set: "rule:<id>" or "bot:<uuid>"."""
    return f"rule:{rule_id}" if rule_id is not None else f"bot:{bot_id}"


def sticky_point(*, owner: str, conversation: str) -> float:
    """The conversation's fixed point in [0, 1) for this variant set."""
    digest = hashlib.sha256(f"{owner}|{conversation}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Arm:
    """A variant as the split uses it: it answers with a profile or runs a configured skill."""

    variant_id: int
    name: str
    profile_id: int | None
    skill_instance_id: int | None = None
    skill: str = ""  # the configured skill's kind, e.g. "http_action"


class Split:
    """The variants of one rule or bot and their cumulative shares (read-only, shared)."""

    def __init__(self, owner: str, arms: list[tuple[Arm, float]]) -> None:
        self.owner = owner
        total = sum(weight for _arm, weight in arms)
        self.arms: list[Arm] = []
        self.bounds: list[float] = []
        running = 0.0
        for arm, weight in arms:
            if weight <= 0:
                continue
            running += weight / total
            self.arms.append(arm)
            self.bounds.append(running)

    def __bool__(self) -> bool:
        return bool(self.arms)

    def pick(self, conversation: str) -> Arm:
        point = sticky_point(owner=self.owner, conversation=conversation)
        index = bisect_right(self.bounds, point)
        return self.arms[min(index, len(self.arms) - 1)]


def splits_compile(variants: list, releases: list) -> dict[str, Split]:
    """Each rule's and bot's split, with the active releases' steps applied."""
    by_owner: dict[str, list] = {}
    for variant in variants:
        key = owner_key(rule_id=variant.rule_id, bot_id=variant.bot_id)
        by_owner.setdefault(key, []).append(variant)
    released = {release.control_id: release for release in releases}
    splits: dict[str, Split] = {}
    for key, members in by_owner.items():
        members.sort(key=lambda variant: variant.pk)
        weights: list[tuple[Arm, float]] = []
        in_release: set[int] = set()
        for variant in members:
            release = released.get(variant.pk)
            if release is not None:
                under = next((m for m in members if m.pk == release.variant_id), None)
                if under is not None:
                    pair = variant.weight + under.weight
                    share = pair * release.percent / 100
                    weights.append((_arm(under), share))
                    weights.append((_arm(variant), pair - share))
                    in_release.update({variant.pk, under.pk})
        for variant in members:
            if variant.pk not in in_release:
                weights.append((_arm(variant), float(variant.weight)))
        split = Split(key, weights)
        if split:
            splits[key] = split
    return splits


def _arm(variant) -> Arm:
    instance = variant.skill_instance if variant.skill_instance_id is not None else None
    return Arm(
        variant_id=variant.pk,
        name=variant.name,
        profile_id=variant.profile_id,
        skill_instance_id=variant.skill_instance_id,
        skill=instance.skill if instance is not None else "",
    )


SPLIT_ACTIONS = (Action.PROFILE, Action.SKILL)  # the rule actions variants can split


def variant_validate(*, variant) -> None:
    """Raise ValidationError naming what cannot work in `variant`."""
    if (variant.rule_id is None) == (variant.bot_id is None):
        raise ValidationError(_("A variant belongs to either a routing rule or a bot."))
    if (variant.profile_id is None) == (variant.skill_instance_id is None):
        raise ValidationError(
            _("A variant answers with either a model profile or a configured skill: choose one.")
        )
    if variant.rule_id is not None and variant.rule.action not in SPLIT_ACTIONS:
        raise ValidationError(
            {
                "rule": _(
                    "Variants split a rule's answers between profiles or skills: the rule "
                    "must answer with a model profile or run a skill."
                )
            }
        )
    if variant.skill_instance_id is not None:
        _skill_variant_validate(variant)


def _skill_variant_validate(variant) -> None:
    # A configured skill holds one bot's settings (its keys, its URLs): it only ever runs
    # for that bot, so a variant may only offer it where that bot alone answers.
    instance = variant.skill_instance
    if variant.bot_id is not None and instance.bot_id != variant.bot_id:
        raise ValidationError({"skill_instance": _("Choose one of this bot's configured skills.")})
    if variant.rule_id is not None:
        bots = {str(pk) for pk in variant.rule.bots.values_list("pk", flat=True)}
        if bots != {str(instance.bot_id)}:
            raise ValidationError(
                {
                    "skill_instance": _(
                        "A configured skill runs for its own bot only: limit the rule to "
                        "the bot “%(bot)s” (its Bots field) to give it a skill variant."
                    )
                    % {"bot": instance.bot.name}
                }
            )


def release_validate(*, release) -> None:
    """Raise ValidationError naming each field of `release` that cannot work."""
    from apps.routing.models import Release

    errors: dict[str, Any] = {}
    steps = release.steps
    if (
        not isinstance(steps, list)
        or not steps
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 < s <= 100 for s in steps)
        or any(a >= b for a, b in zip(steps, steps[1:], strict=False))
        or steps[-1] != 100
    ):
        errors["steps"] = _("Rising percentages from 1 to 100, ending at 100, e.g. 5, 20, 100.")
    for name in ("max_error_rate", "max_negative_rate"):
        value = getattr(release, name)
        if value is None or not 0 <= value <= 1:
            errors[name] = _("A share from 0 to 1, e.g. 0.05 for 5 %.")
    if release.variant_id is not None and release.control_id is not None:
        variant, control = release.variant, release.control
        if variant.pk == control.pk:
            errors["control"] = _("The control must be another variant.")
        elif (variant.rule_id, variant.bot_id) != (control.rule_id, control.bot_id):
            errors["control"] = _("The control must be a variant of the same rule or bot.")
        elif release.state in ACTIVE_RELEASE_STATES:
            others = Release.objects.filter(
                state__in=ACTIVE_RELEASE_STATES,
                variant__rule_id=variant.rule_id,
                variant__bot_id=variant.bot_id,
            ).exclude(pk=release.pk)
            if others.exists():
                errors["variant"] = _(
                    "Another release of this rule or bot is running or paused; finish it first."
                )
    if errors:
        raise ValidationError(errors)
