"""Deciding how a turn is answered. The engine decides; it never sends."""

from __future__ import annotations

from dataclasses import dataclass

from apps.providers.models import ModelProfile


@dataclass(frozen=True)
class Decision:
    """How to answer: with a model profile, or not at all (and why)."""

    profile: ModelProfile | None
    reason: str = ""


def route(*, conversation) -> Decision:
    """Pick how to answer the conversation's pending messages: the bot's profile."""
    bot = conversation.bot
    if bot.profile_id is None:
        return Decision(profile=None, reason=f"bot {bot.name!r} has no model profile")
    if "profile" in bot._state.fields_cache:  # the caller loaded it (with its provider)
        return Decision(profile=bot.profile)
    profile = ModelProfile.objects.select_related("provider", "fallback__provider").get(
        pk=bot.profile_id
    )
    return Decision(profile=profile)
