"""Writes of routing rules. The admin and the API both save through these."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from apps.routing.models import RoutingRule


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
