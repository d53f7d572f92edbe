"""The admin's home page: `{% admin_overview as overview %}` (bots, providers, traffic)."""

from __future__ import annotations

from django import template

from apps.core.selectors import AdminOverview, admin_overview

register = template.Library()


@register.simple_tag(name="admin_overview")
def admin_overview_tag() -> AdminOverview:
    return admin_overview()


@register.filter
def seconds_ago(seconds: float | None) -> str:
    """A heartbeat's age, short: "12 s", "4 min", "3 h"."""
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"
