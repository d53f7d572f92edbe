"""Reads of routing rules: the compiled rule set every decision uses, cached per process."""

from __future__ import annotations

from apps.core.config import config_cache
from apps.providers.models import ModelProfile
from apps.routing.models import Release, RoutingRule, Variant
from apps.routing.rules import RuleSet, ruleset_compile
from apps.routing.variants import ACTIVE_RELEASE_STATES, splits_compile

RULESET_KEY = ("routing", "ruleset")


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
    variants = list(Variant.objects.all())
    releases = list(Release.objects.filter(state__in=ACTIVE_RELEASE_STATES))
    profile_ids = {rule.profile_id for rule in rules if rule.profile_id is not None}
    profile_ids |= {variant.profile_id for variant in variants}
    profiles = {
        profile.pk: profile
        for profile in ModelProfile.objects.select_related("provider", "fallback__provider").filter(
            pk__in=profile_ids
        )
    }
    return ruleset_compile(rules, bots, profiles, splits_compile(variants, releases))


def routing_rule_list():
    """Every rule, enabled or not, in the order they are tried."""
    return RoutingRule.objects.prefetch_related("bots").select_related("profile")


def variant_list():
    """Every A/B variant with its rule or bot and profile."""
    return Variant.objects.select_related("rule", "bot", "profile")


def release_list():
    """Every release, newest first, with its variants and history."""
    return Release.objects.select_related(
        "variant__rule", "variant__bot", "control"
    ).prefetch_related("history")
