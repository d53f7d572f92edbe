"""Turns a skill answers (a routing rule's or a variant's): found and given their input
in a database thread, run off it within the skill's time limit, then recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy

from apps.conversations.choices import MessageStatus
from apps.conversations.events import MessageEvent, message_payload, publish
from apps.conversations.models import Conversation, Message
from apps.conversations.selectors import reply_language
from apps.conversations.services.delivery import reply_system
from apps.core.sql import rows_update
from apps.routing.engine import Decision
from apps.skills.base import Skill, SkillContext, SkillError
from apps.skills.services import skill_execute, skill_for_rule

SKILL_FAILED_REPLY = gettext_lazy(
    "Sorry, I could not do that just now. Please try again later, or ask for a person."
)


@dataclass
class SkillTurn:
    """A turn a routing rule's skill answers: prepared here, run by the engine off the
    database threads (`skill_turn_run`), then recorded (`skill_turn_record`)."""

    conversation: Conversation
    pending: list[Message]
    decision: Decision
    skill: Skill | None  # None: nothing to run (disabled, deleted, not installed)
    context: SkillContext | None
    run: dict = field(default_factory=dict)


@dataclass
class SkillOutcome:
    """What a skill run answers, and what is recorded about it."""

    text: str | Promise
    error: str = ""
    details: dict = field(default_factory=dict)


def skill_turn_prepare(
    *, conversation: Conversation, pending: list[Message], decision: Decision
) -> SkillTurn:
    """Find the skill a rule runs for this turn and what it is given."""
    bot = conversation.bot
    run: dict = {"skill": decision.skill, "skill_instance_id": decision.skill_instance_id}
    found = skill_for_rule(
        bot=bot, skill_instance_id=decision.skill_instance_id, skill=decision.skill
    )
    if found is None:
        return SkillTurn(conversation, pending, decision, None, None, run)
    skill, config, instance = found
    run.update(skill=skill.name, skill_instance_id=instance.pk if instance else None)
    context = turn_skill_context(conversation=conversation, pending=pending, config=config)
    return SkillTurn(conversation, pending, decision, skill, context, run)


def turn_skill_context(
    *, conversation: Conversation, pending: list[Message], config: dict
) -> SkillContext:
    """What a skill (run by a rule, or called by the model as a tool) is told of the turn."""
    last = pending[-1]
    return SkillContext(
        bot=conversation.bot,
        config=config,
        text="\n".join(message.text for message in pending if message.text),
        user_id=last.sender_id,
        user_name=(conversation.participants or {}).get(last.sender_id, ""),
        chat_id=conversation.chat_id,
        platform=conversation.bot.platform,
        language=reply_language(bot=conversation.bot, message=last),
    )


def skill_turn_run(*, turn: SkillTurn) -> SkillOutcome:
    """Run the turn's skill within its time limit (blocking: the engine's I/O threads)."""
    if turn.skill is None or turn.context is None:
        return SkillOutcome(
            SKILL_FAILED_REPLY,
            "skill failed: nothing to run (disabled, deleted, not this bot's or not installed)",
        )
    try:
        result = skill_execute(skill=turn.skill, context=turn.context)
    except SkillError as failure:
        return SkillOutcome(
            failure.user_message or SKILL_FAILED_REPLY, f"skill failed: {failure}", failure.details
        )
    return SkillOutcome(result.text, "", result.details)


def skill_turn_record(*, turn: SkillTurn, outcome: SkillOutcome) -> None:
    """Answer the turn with the skill's text (or its clear failure reply), recorded on the
    answer: `error` says what went wrong, `attempts` what was tried."""
    decision, pending = turn.decision, turn.pending
    routed = {"routing_rule_id": decision.rule_id, "decision": decision.record()}
    attempts = [
        {
            **turn.run,
            "outcome": "failed" if outcome.error else "answered",
            "reason": outcome.error or "answered by the skill",
            **outcome.details,
        }
    ]
    note = outcome.error or "answered by a skill"
    with transaction.atomic():
        Message.objects.filter(pk__in=[m.pk for m in pending]).update(
            status=MessageStatus.ANSWERED, error=note, **routed
        )
        for message in pending:
            message.status, message.error = MessageStatus.ANSWERED, note
            publish(turn.conversation.pk, MessageEvent(message_payload(message)))
        if str(outcome.text).strip():
            reply = reply_system(
                conversation=turn.conversation, text=outcome.text, reply_to=pending[-1]
            )
            rows_update(
                Message, [reply.pk], {**routed, "attempts": attempts, "error": outcome.error}
            )
