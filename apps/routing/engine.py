"""Deciding how a turn is answered. The engine decides; it never sends.

`route()` decides everything about a turn, in this order:

1. staff have the conversation (taken over, or handed off and waiting): nobody else
   answers (`Failure.TAKEN_OVER`), and no rule is tried;
2. the enabled routing rules in order (apps/routing/rules.py) against the turn's
   messages; the first whose conditions all hold decides what happens: answer with a
   model profile (the bot's or the rule's, optionally with more system prompt), run a
   skill, a fixed reply, a hand-off to staff, or nothing. No rule, or no match, is the
   default: the bot's own profile (`Failure.NO_PROFILE` when it has none). A rule (or
   the bot's default) with A/B variants answers each conversation with its sticky
   variant, a profile or a configured skill (apps/routing/variants.py);
3. an answer by a model is refused when the bot or the sender has used up today's
   tokens (`Failure.BOT_BUDGET`, `Failure.USER_BUDGET`); fixed replies, hand-offs and
   skills use no tokens and are never refused.

The `Decision` says which rule and which variant decided and why, and `failure` says why
the assistant does not answer as routed; the turn acts on it and stores it on the answer.
`decide()` is step 2 alone, with no database: what the benchmark times.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from django.utils import timezone

from apps.providers.models import ModelProfile
from apps.providers.selectors import daily_tokens
from apps.routing.choices import Action, Failure
from apps.routing.rules import CompiledRule, RoutingInput, RuleSet, template_render
from apps.routing.selectors import ruleset_get
from apps.routing.variants import SPLIT_ACTIONS, Arm, owner_key

DEFAULT_REASON = "no rule matched: the bot's profile"
TAKEN_OVER_REASON = "staff have taken the conversation over: the assistant stays silent"
WAITING_REASON = "handed off to staff, waiting for someone to take it: the assistant stays silent"


@dataclass(frozen=True)
class Decision:
    """How to answer, which rule decided and why.

    `action` is one of `Action`; `failure` (one of `Failure`, else "") says why a turn
    cannot be answered, so callers never read `reason` to tell failures apart. `variant`
    names the A/B variant that answered ("" when the rule or bot has none), `variant_id`
    its id (what release statistics count by, since names can change).
    """

    action: str
    profile: ModelProfile | None = None
    rule_id: int | None = None
    rule_name: str = ""
    variant: str = ""
    variant_id: int | None = None
    reason: str = ""
    failure: str = ""
    extra_system_prompt: str = ""
    reply_text: str = ""
    skill: str = ""
    skill_instance_id: int | None = None

    def record(self) -> dict[str, Any]:
        """The decision as stored on the message (JSON)."""
        recorded = {
            "action": self.action,
            "rule_id": self.rule_id,
            "rule": self.rule_name,
            "variant": self.variant,
            "variant_id": self.variant_id,
            "reason": self.reason,
            "failure": self.failure,
            "profile_id": self.profile.pk if self.profile is not None else None,
        }
        if self.action == Action.SKILL:
            recorded.update(skill=self.skill, skill_instance_id=self.skill_instance_id)
        return recorded


def routing_input(*, conversation, pending: list, now: datetime | None = None) -> RoutingInput:
    """What the rules look at for a turn: the conversation and its pending messages."""
    bot = conversation.bot
    last = pending[-1]
    kinds: frozenset[str] = frozenset()
    if any(getattr(message, "has_attachments", True) for message in pending):
        from apps.conversations.models import MessageAttachment

        kinds = frozenset(
            MessageAttachment.objects.filter(message__in=[m.pk for m in pending]).values_list(
                "kind", flat=True
            )
        )
    return RoutingInput(
        bot_id=str(bot.pk),
        platform=bot.platform,
        chat_type=conversation.chat_type,
        chat_id=conversation.chat_id,
        user_id=last.sender_id,
        text="\n".join(message.text for message in pending if message.text),
        now=now or timezone.now(),
        attachment_kinds=kinds,
        user_name=(conversation.participants or {}).get(last.sender_id, ""),
        bot_name=bot.name,
        conversation_id=conversation.pk,
    )


def route(*, conversation, pending: list | None = None) -> Decision:
    """Decide how to answer the conversation's pending messages (see the module's doc)."""
    staff = staff_decision(conversation)
    if staff is not None:
        return staff
    item = routing_input(conversation=conversation, pending=pending) if pending else None
    decision = decide(bot=conversation.bot, item=item)
    sender = pending[-1].sender_id if pending else ""
    return budget_check(decision=decision, bot=conversation.bot, sender_id=sender)


def staff_decision(conversation) -> Decision | None:
    """`Failure.TAKEN_OVER` when staff have the conversation (or it waits for them), else None.

    Reads the conversation's own fields: no query.
    """
    if conversation.handled_by_id is None and conversation.taken_over_at is None:
        return None
    waiting = conversation.handled_by_id is None
    return Decision(
        action=Action.HANDOFF,
        failure=Failure.TAKEN_OVER,
        reason=WAITING_REASON if waiting else TAKEN_OVER_REASON,
    )


def budget_check(*, decision: Decision, bot, sender_id: str, day: date | None = None) -> Decision:
    """`decision`, refused (`Failure.BOT_BUDGET` or `USER_BUDGET`) when it would call a model
    and the bot or the sender has used up today's tokens.

    Only answers by a model are counted and refused: a fixed reply, a hand-off or a skill
    uses no tokens. One query when the bot has either budget, none otherwise.
    """
    if decision.action != Action.PROFILE or decision.failure:
        return decision
    bot_budget = bot.daily_token_budget
    user_budget = bot.user_daily_token_budget if sender_id else None
    if bot_budget is None and user_budget is None:
        return decision
    used = daily_tokens(
        bot_id=bot.pk,
        sender_id=sender_id if user_budget is not None else None,
        day=day or timezone.localdate(),
    )
    if bot_budget is not None and used.bot >= bot_budget:
        return replace(
            decision,
            failure=Failure.BOT_BUDGET,
            reason=f"{decision.reason}; refused: bot {bot.name!r} has used {used.bot} "
            f"of its {bot_budget} tokens today",
        )
    if user_budget is not None and used.sender >= user_budget:
        return replace(
            decision,
            failure=Failure.USER_BUDGET,
            reason=f"{decision.reason}; refused: user {sender_id} has used {used.sender} "
            f"of their {user_budget} tokens today",
        )
    return decision


def decide(*, bot, item: RoutingInput | None, ruleset: RuleSet | None = None) -> Decision:
    """The decision for one message described by `item` (None: the bot's default)."""
    if item is None:
        return _profile_decision(bot, None, rule=None, reason=DEFAULT_REASON)
    ruleset = ruleset if ruleset is not None else ruleset_get()
    ruleset.prepare(item)
    for rule in ruleset.for_bot(item.bot_id):
        if rule.miss(item) is None:
            return _decision_of(rule, bot, item, ruleset)
    return _default_decision(bot, item, ruleset)


def _default_decision(bot, item: RoutingInput, ruleset: RuleSet) -> Decision:
    """No rule matched: the bot's profile, or the variant of its split for this conversation."""
    arm = _arm_for(ruleset, owner_key(bot_id=bot.pk), item)
    if arm is not None:
        return _arm_decision(bot, arm, ruleset, rule=None, reason=DEFAULT_REASON)
    return _profile_decision(bot, None, rule=None, reason=DEFAULT_REASON)


def _arm_decision(
    bot, arm: Arm, ruleset: RuleSet, *, rule: CompiledRule | None, reason: str, extra: str = ""
) -> Decision:
    """The answer of a conversation's variant: its configured skill, or its profile."""
    if arm.skill_instance_id is not None:
        return Decision(
            action=Action.SKILL,
            rule_id=rule.id if rule else None,
            rule_name=rule.name if rule else "",
            variant=arm.name,
            variant_id=arm.variant_id,
            reason=reason,
            skill=arm.skill,
            skill_instance_id=arm.skill_instance_id,
        )
    profile = ruleset.profiles.get(arm.profile_id) if arm.profile_id else None
    return _profile_decision(bot, profile, rule=rule, reason=reason, extra=extra, arm=arm)


def _arm_for(ruleset: RuleSet, owner: str, item: RoutingInput) -> Arm | None:
    split = ruleset.splits.get(owner)
    return split.pick(item.sticky_key) if split else None


@dataclass(frozen=True)
class Explanation:
    """Why each rule before the deciding one did not answer, and the decision."""

    skipped: list[tuple[CompiledRule, str]]
    decision: Decision


def explain(*, bot, item: RoutingInput, conversation=None) -> Explanation:
    """Every rule tried for `item` with the condition it missed, and the decision as
    `route()` would make it: staff holding `conversation` (the chat's open conversation,
    if any) first, the budgets after."""
    staff = staff_decision(conversation) if conversation is not None else None
    if staff is not None:
        return Explanation([], staff)
    ruleset = ruleset_get()
    ruleset.prepare(item)
    skipped: list[tuple[CompiledRule, str]] = []
    decision = None
    for rule in ruleset.rules:
        missed = rule.miss(item)
        if missed is None:
            decision = _decision_of(rule, bot, item, ruleset)
            break
        skipped.append((rule, missed))
    if decision is None:
        decision = _default_decision(bot, item, ruleset)
    return Explanation(skipped, budget_check(decision=decision, bot=bot, sender_id=item.user_id))


def _decision_of(rule: CompiledRule, bot, item: RoutingInput, ruleset: RuleSet) -> Decision:
    reason = f"rule {rule.name!r} matched"
    common: dict[str, Any] = {"rule_id": rule.id, "rule_name": rule.name, "reason": reason}
    if rule.action in SPLIT_ACTIONS:
        arm = _arm_for(ruleset, owner_key(rule_id=rule.id), item)
        if arm is not None:
            return _arm_decision(
                bot, arm, ruleset, rule=rule, reason=reason, extra=rule.extra_system_prompt
            )
    if rule.action == Action.PROFILE:
        profile = ruleset.profiles.get(rule.profile_id) if rule.profile_id else None
        return _profile_decision(
            bot, profile, rule=rule, reason=reason, extra=rule.extra_system_prompt
        )
    text = ""
    if rule.reply_template:
        text = template_render(
            rule.reply_template,
            {
                "user_name": item.user_name,
                "user_id": item.user_id,
                "chat_id": item.chat_id,
                "bot_name": item.bot_name,
                "text": item.text,
            },
        )
    if rule.action == Action.SKILL:
        common.update(skill=rule.skill, skill_instance_id=rule.skill_instance_id)
    return Decision(action=rule.action, reply_text=text, **common)


def _profile_decision(
    bot,
    profile: ModelProfile | None,
    *,
    rule: CompiledRule | None,
    reason: str,
    extra: str = "",
    arm: Arm | None = None,
) -> Decision:
    common: dict[str, Any] = {
        "rule_id": rule.id if rule else None,
        "rule_name": rule.name if rule else "",
        "extra_system_prompt": extra,
        "variant": arm.name if arm else "",
        "variant_id": arm.variant_id if arm else None,
    }
    if profile is None:
        if bot.profile_id is None:
            return Decision(
                action=Action.PROFILE,
                failure=Failure.NO_PROFILE,
                reason=f"bot {bot.name!r} has no model profile",
                **common,
            )
        if "profile" in bot._state.fields_cache:  # the caller loaded it (with its provider)
            profile = bot.profile
        else:
            profile = ModelProfile.objects.select_related("provider", "fallback__provider").get(
                pk=bot.profile_id
            )
    return Decision(action=Action.PROFILE, profile=profile, reason=reason, **common)
