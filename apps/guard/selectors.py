"""Reads of the flood limits."""

from __future__ import annotations

from apps.guard.models import SINGLETON_ID, FloodLimits


def flood_limits_get() -> FloodLimits:
    """The limits in effect (the singleton row, or the defaults before anyone saved it)."""
    return FloodLimits.objects.filter(pk=SINGLETON_ID).first() or FloodLimits()
