"""Turns: the database steps of answering everything pending in a conversation together.

These are the synchronous halves of a turn; apps.conversations.engine runs them
in its database threads and does the waiting (model, platform) on the process loop.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy, gettext_noop

from apps.bots.platforms import adapter_for
from apps.bots.platforms.base import (
    OutboundMessage,
    PlatformAdapter,
    answer_shown_key,
)
from apps.bots.selectors import bot_config_get
from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.events import MessageEvent, message_payload, publish
from apps.conversations.models import Conversation, Message, MessageAttachment
from apps.conversations.services.console import conversation_hand_off
from apps.conversations.services.delivery import outbound_for, reply_system
from apps.conversations.services.dispatch import dispatch_delivery, dispatch_turn
from apps.conversations.services.skill_turns import SkillTurn, skill_turn_prepare
from apps.conversations.services.turn_context import (
    turn_cache_key,
    turn_history_compact,
    turn_history_rows,
    turn_prompt_builder,
)
from apps.conversations.services.turn_inputs import turn_input_read, unsupported_reply
from apps.conversations.services.turn_tools import tool_calls_publish, turn_tools_prepare
from apps.core import metrics
from apps.core.config import config_cache
from apps.core.masking import mask_personal_data
from apps.core.redis import as_text, get_async_redis, get_redis
from apps.core.retry import backoff_delay
from apps.core.sql import model_column, row_insert, rows_exist, rows_from, rows_update, select_list
from apps.providers.client import (
    COOLING_DOWN,
    ModelError,
    PromptBuilder,
    Reply,
    profile_chain,
)
from apps.providers.models import ModelProfile
from apps.providers.services import usage_cost
from apps.providers.tool_loop import ToolLoop
from apps.routing.choices import Action, Failure
from apps.routing.engine import Decision, route

logger = logging.getLogger(__name__)

APOLOGY = gettext_lazy("Sorry, I could not answer that just now. The team has been notified.")
BOT_BUDGET_REPLY = gettext_lazy(
    "Sorry, this assistant has used up its daily allowance. Please try again tomorrow."
)
USER_BUDGET_REPLY = gettext_lazy(
    "Sorry, you have reached today's limit for this assistant. Please try again tomorrow."
)
HANDOFF_REPLY = gettext_lazy(
    "I have passed your message to our staff; someone will answer you here shortly."
)


def turn_claim(*, conversation_id: int) -> tuple[list[Message], str]:
    """Mark what is pending in a conversation as `processing` and return it (oldest first).

    The caller holds the conversation's turn lock, so no other turn touches these
    rows: no transaction is needed. Messages already `processing` were left by a
    turn that died: they are answered again now, and its half-written answer is
    marked failed first. Also returns the chat message that answer had shown ("" if
    none), which the new answer continues.
    """
    pending = rows_from(
        Message,
        _pending_sql(),
        [conversation_id, Direction.IN, MessageStatus.RECEIVED, MessageStatus.PROCESSING],
        extra=("has_attachments",),
    )
    if not pending:
        return [], ""
    shown = ""
    if any(message.status == MessageStatus.PROCESSING for message in pending):
        shown = _release_interrupted_answer(conversation_id)
    now = timezone.now()
    rows_update(
        Message,
        [message.pk for message in pending],
        {"status": MessageStatus.PROCESSING, "model_started_at": now},
    )
    for message in pending:
        message.status = MessageStatus.PROCESSING
        message.model_started_at = now
    return pending, shown


def _conversation(conversation_id: int) -> Conversation:
    """The conversation's row (as `objects.get`, without compiling a query each turn)."""
    found = rows_from(Conversation, _conversation_sql(), [conversation_id])
    if not found:
        raise Conversation.DoesNotExist(conversation_id)
    return found[0]


@cache
def _conversation_sql() -> str:
    quote = connection.ops.quote_name
    return (
        f"SELECT {select_list(Conversation, 'c')} "  # noqa: S608 - names from the metadata
        f"FROM {quote(Conversation._meta.db_table)} c "
        f"WHERE c.{quote(model_column(Conversation, 'id'))} = %s"
    )


@cache
def _pending_sql() -> str:
    """A conversation's messages waiting for an answer, oldest first, each with
    `has_attachments`; parameters: conversation id, direction in, the two statuses.

    Written as SQL: the ORM spent several milliseconds of CPU compiling this query
    (an `Exists()` annotation, then hashing it again for the ordering; py-spy) on
    every claim, for a question the database answers in microseconds.
    """
    quote = connection.ops.quote_name
    message, attachment = Message._meta, MessageAttachment._meta

    def column(name: str) -> str:
        return "m." + quote(model_column(Message, name))

    # Names come from the models' metadata, quoted; values are parameters.
    return (
        f"SELECT {select_list(Message, 'm')}, "  # noqa: S608
        f"EXISTS (SELECT 1 FROM {quote(attachment.db_table)} a "
        f"WHERE a.{quote(model_column(MessageAttachment, 'message'))} = {column('id')}) "
        f"AS has_attachments FROM {quote(message.db_table)} m "
        f"WHERE {column('conversation')} = %s AND {column('direction')} = %s "
        f"AND {column('status')} IN (%s, %s) ORDER BY {column('id')}"
    )


def _release_interrupted_answer(conversation_id: int) -> str:
    """Mark the answer a lost worker left half-written as failed; the new one takes its place.

    Returns the chat message it had already shown (or ""): the new answer continues
    that message, edited into the full answer, instead of leaving a truncated message
    above a second one.
    """
    interrupted = list(
        Message.objects.filter(
            conversation_id=conversation_id,
            direction=Direction.OUT,
            status=MessageStatus.PROCESSING,
        ).order_by("-id")
    )
    shown = next((m.platform_message_id for m in interrupted if m.platform_message_id), "")
    if interrupted and not shown:
        # The worker may have died between showing the answer and recording where.
        try:
            found = get_redis().mget([answer_shown_key(m.pk) for m in interrupted])
        except redis.RedisError:
            found = []
        shown = next((as_text(value) for value in found if value), "")
    Message.objects.filter(pk__in=[m.pk for m in interrupted]).update(
        status=MessageStatus.FAILED,
        error="interrupted: the worker was lost mid-answer; the next answer continues it",
        platform_message_id="",
    )
    return shown


async def streamed_remember(answer_id: int, platform_message_id: str) -> None:
    """Note at once (from the process loop) which chat message shows a streaming answer."""
    try:
        await get_async_redis().set(answer_shown_key(answer_id), platform_message_id, ex=86400)
    except redis.RedisError:
        logger.warning("could not note that answer %s is shown", answer_id)


def turn_start(*, conversation_id: int) -> PreparedTurn | SkillTurn | None:
    """Claim what is pending and get its answer ready, in one trip to a database thread.

    None when nothing was pending or the turn needed no model (see `turn_prepare`).
    """
    pending, shown = turn_claim(conversation_id=conversation_id)
    if not pending:
        return None
    with config_cache.pinned():  # bot, routing and provider read at one version
        return turn_prepare(conversation_id=conversation_id, pending=pending, continue_in=shown)


def turn_pending_exists(*, conversation_id: int) -> bool:
    """Whether user messages wait for a turn in this conversation."""
    return rows_exist(
        Message,
        {
            "conversation": conversation_id,
            "direction": Direction.IN,
            "status": [MessageStatus.RECEIVED, MessageStatus.PROCESSING],
        },
    )


def turn_new_message_exists(*, conversation_id: int) -> bool:
    """Whether the user wrote again after the running turn claimed its messages."""
    return rows_exist(
        Message,
        {
            "conversation": conversation_id,
            "direction": Direction.IN,
            "status": MessageStatus.RECEIVED,
        },
    )


INTERRUPTED_NOTE = "interrupted: the user wrote again; the next answer covers every message"


def turn_interrupt(*, prepared: PreparedTurn, text: str) -> bool:
    """Stop the turn's answer because the user wrote again (the bot's `while_answering`).

    The answer keeps the text written so far and is marked `interrupted`; the turn's
    user messages wait again, so the next turn answers them together with the new ones.
    False, changing nothing, when the answer is no longer this turn's.
    """
    answer = prepared.answer
    answer.text = text
    answer.status = MessageStatus.INTERRUPTED
    answer.model_done_at = timezone.now()
    answer.error = INTERRUPTED_NOTE
    answer.tool_calls = list(prepared.tools.records) if prepared.tools is not None else []
    recorded = {
        name: getattr(answer, name)
        for name in ("text", "status", "model_done_at", "error", "first_token_at", "tool_calls")
    }
    with transaction.atomic():
        if not rows_update(
            Message, [answer.pk], recorded, where={"status": MessageStatus.PROCESSING}
        ):
            return False
        rows_update(Message, [m.pk for m in prepared.pending], {"status": MessageStatus.RECEIVED})
        publish(prepared.conversation.pk, MessageEvent(message_payload(answer)))
        tool_calls_publish(answer=answer)
    return True


@dataclass
class PreparedTurn:
    """A turn ready for the model: the answer row, the prompt, and where it goes.

    `answered` is set when no model call is needed (the response cache had it).
    """

    conversation: Conversation
    pending: list[Message]
    adapter: PlatformAdapter
    answer: Message
    outbound: OutboundMessage
    chain: list[ModelProfile]
    build: PromptBuilder
    cache_key: str | None
    answered: bool = False
    tools: ToolLoop | None = None  # the tools the model may call (turn_tools.py)


def turn_prepare(
    *, conversation_id: int, pending: list[Message], continue_in: str = ""
) -> PreparedTurn | SkillTurn | None:
    """Decide how to answer the claimed messages, and get the model call ready.

    Answers without a model (what the routing decision refused: staff have the
    conversation, no profile, budget used up; a rule's fixed reply, hand-off or ignore;
    unreadable input) are recorded here and None is returned; a skill (a rule's or a
    variant's) returns a `SkillTurn` to run.
    Otherwise the answer row is created (`processing`) and the prompt is built from the
    history, compacting it when it no longer fits.
    """
    conversation = _conversation(conversation_id)
    # The cached configuration; the row itself if the cache no longer has the bot.
    conversation.bot = bot_config_get(bot_id=conversation.bot_id) or conversation.bot
    # The engine decides everything (staff, rules, variants, budgets); this carries it out.
    decision = route(conversation=conversation, pending=pending)
    if decision.failure:
        _answer_refused(conversation, pending, decision)
        return None
    if decision.action == Action.SKILL:
        return skill_turn_prepare(conversation=conversation, pending=pending, decision=decision)
    if decision.action != Action.PROFILE:
        _answer_by_rule(conversation, pending, decision)
        return None
    profile = decision.profile
    if profile is None:  # a profile decision names one, unless `failure` said otherwise
        _fail_turn(conversation, pending, decision.reason or "no model profile", decision=decision)
        return None
    extra = decision.extra_system_prompt

    adapter = adapter_for(conversation.bot)
    inputs = [turn_input_read(adapter, message, profile) for message in pending]
    if conversation.bot.mask_personal_data:  # what the model sees, voice transcripts too
        for item in inputs:
            item.text = mask_personal_data(item.text)
    if not any(item.understood_by(profile) for item in inputs):
        _answer_fixed_turn(
            conversation, pending, unsupported_reply(inputs), note="input not supported"
        )
        return None

    answer = row_insert(
        Message(
            conversation=conversation,
            bot=conversation.bot,
            direction=Direction.OUT,
            author=Author.ASSISTANT,
            status=MessageStatus.PROCESSING,
            reply_to=pending[-1],
            profile=profile,
            routing_rule_id=decision.rule_id,
            decision=decision.record(),
            model_started_at=timezone.now(),
            # Set when a lost turn already showed part of an answer: continue that message.
            platform_message_id=continue_in,
        )
    )
    publish(conversation_id, MessageEvent(message_payload(answer)))
    chain = profile_chain(profile)
    tools = turn_tools_prepare(conversation=conversation, pending=pending, chain=chain)
    # An answer that may call tools acts (opens a ticket): never answered from a cache.
    cache_key = (
        None if tools else turn_cache_key(conversation, profile, pending, inputs, extra=extra)
    )
    prepared = PreparedTurn(
        conversation=conversation,
        pending=pending,
        adapter=adapter,
        answer=answer,
        outbound=outbound_for(answer),
        chain=chain,
        build=turn_prompt_builder(conversation, [], inputs, extra=extra),
        cache_key=cache_key,
        tools=tools,
    )
    if prepared.cache_key is not None:
        cached = get_redis().get(prepared.cache_key)
        if cached is not None:
            prepared.answered = turn_record(prepared=prepared, text=as_text(cached), cached=True)
            return prepared

    history = turn_history_rows(conversation, before_id=pending[0].pk)
    history = turn_history_compact(conversation, profile, history, inputs, extra=extra)
    prepared.build = turn_prompt_builder(conversation, history, inputs, extra=extra)
    return prepared


def turn_stream_started(*, prepared: PreparedTurn, platform_message_id: str) -> None:
    """The streamed answer is in the chat: remember where, so delivery edits it, never resends."""
    rows_update(Message, [prepared.answer.pk], {"platform_message_id": platform_message_id})
    prepared.answer.platform_message_id = platform_message_id


def turn_record(
    *, prepared: PreparedTurn, text: str, reply: Reply | None = None, cached: bool = False
) -> bool:
    """Record the answer (status answered) and close the turn's user messages.

    Returns False, recording nothing, when the answer is no longer this turn's to
    give: its worker was taken for dead and another turn took the messages over.
    """
    answer = prepared.answer
    answer.text = text
    answer.status = MessageStatus.ANSWERED
    answer.model_done_at = timezone.now()
    answer.cached = cached
    if reply is not None:
        answer.profile = reply.profile
        answer.attempts = reply.attempts
        answer.tool_calls = reply.tool_calls
        answer.prompt_tokens = reply.usage.prompt_tokens
        answer.completion_tokens = reply.usage.completion_tokens
        answer.tokens_estimated = reply.usage.estimated
        answer.cost = usage_cost(
            profile=reply.profile,
            prompt_tokens=reply.usage.prompt_tokens,
            completion_tokens=reply.usage.completion_tokens,
        )
        metrics.model_usage_record(
            profile=reply.profile,
            prompt_tokens=reply.usage.prompt_tokens,
            completion_tokens=reply.usage.completion_tokens,
            cost=answer.cost,
        )
        if reply.interrupted:
            answer.error = "answer interrupted: " + next(
                (a["reason"] for a in reply.attempts if a["outcome"] == "interrupted"), ""
            )
    else:
        answer.attempts = [
            {
                "profile": answer.profile.name if answer.profile else "",
                "profile_id": answer.profile_id,
                "outcome": "cached",
                "reason": "answered from the response cache",
            }
        ]
        answer.prompt_tokens = 0
        answer.completion_tokens = 0
        answer.cost = 0
    recorded = {
        name: getattr(answer, name)
        for name in (
            "text",
            "status",
            "model_done_at",
            "cached",
            "profile",
            "attempts",
            "tool_calls",
            "prompt_tokens",
            "completion_tokens",
            "tokens_estimated",
            "cost",
            "error",
            "first_token_at",
        )
    }
    with transaction.atomic():
        # Only while the answer is still `processing`, i.e. still this turn's.
        if not rows_update(
            Message, [answer.pk], recorded, where={"status": MessageStatus.PROCESSING}
        ):
            logger.warning("answer %s was taken over by another turn; dropped", answer.pk)
            return False
        rows_update(Message, [m.pk for m in prepared.pending], {"status": MessageStatus.ANSWERED})
        if any(m.error.startswith(WAITING_NOTE) for m in prepared.pending):
            get_redis().delete(_outage_key(prepared.conversation.pk))  # the outage is over
        rows_update(Conversation, [prepared.conversation.pk], {"last_activity_at": timezone.now()})
        publish(prepared.conversation.pk, MessageEvent(message_payload(answer)))
        tool_calls_publish(answer=answer)
    if reply is not None and prepared.cache_key is not None:
        first = prepared.chain[0]
        if not reply.interrupted and reply.profile.pk == first.pk:
            get_redis().set(prepared.cache_key, reply.text, ex=first.cache_ttl)
    return True


OUTAGE_NOTICE = gettext_noop(
    "The model is not answering right now. Your message is kept and will be answered "
    "as soon as it is back."
)


WAITING_NOTE = "waiting for the model"


def _outage_key(conversation_id: int) -> str:
    return f"assistant:outage:{conversation_id}"


def turn_model_wait(*, prepared: PreparedTurn, error: ModelError) -> bool:
    """A short model outage: put the turn's messages back to wait and try again later.

    True when they wait (a turn is scheduled with backoff, the user told on the first
    wait only); False when waiting cannot help (the failure is not retryable) or the
    oldest message has waited MODEL_OUTAGE_WAIT_SECONDS already: the caller fails it.
    Also False once tools were called: a later turn would take their actions again.
    """
    if not error.retryable or error.tool_calls:
        return False
    conversation = prepared.conversation
    waited = (timezone.now() - min(m.received_at for m in prepared.pending)).total_seconds()
    left = settings.MODEL_OUTAGE_WAIT_SECONDS - waited
    if left <= 0:
        return False
    redis = get_redis()
    key = _outage_key(conversation.pk)
    waits = redis.incr(key)
    metrics.retry_record(stage="turn")
    redis.expire(key, int(settings.MODEL_OUTAGE_WAIT_SECONDS) + 60)
    if error.kind == COOLING_DOWN and error.retry_after:
        # Nothing was tried: the provider rests for a known time. Come back just after it
        # (spread over two seconds, so the waiting turns do not all knock at once).
        delay = error.retry_after + random.uniform(0.5, 2.5)  # noqa: S311
    else:
        delay = backoff_delay(
            attempt=waits,
            base=settings.MODEL_OUTAGE_RETRY_SECONDS,
            cap=settings.MODEL_OUTAGE_RETRY_MAX_SECONDS,
            jitter=False,
            retry_after=error.retry_after or 0,
        )
    delay = min(delay, left)
    answer = prepared.answer
    answer.status = MessageStatus.FAILED
    answer.error = f"model unavailable, trying again in {delay:.0f}s: {error}"
    answer.attempts = error.attempts
    answer.model_done_at = timezone.now()
    logger.warning("conversation %s: %s", conversation.pk, answer.error)
    with transaction.atomic():
        answer.save(
            update_fields=["status", "error", "attempts", "model_done_at", "first_token_at"]
        )
        publish(conversation.pk, MessageEvent(message_payload(answer)))
        Message.objects.filter(pk__in=[m.pk for m in prepared.pending]).update(
            status=MessageStatus.RECEIVED, error=f"{WAITING_NOTE} (wait {waits})"
        )
        if waits == 1:
            reply_system(
                conversation=conversation,
                text=gettext_lazy(OUTAGE_NOTICE),
                reply_to=prepared.pending[-1],
            )
        dispatch_turn(conversation.pk, countdown=delay)
    return True


def turn_model_failed(*, prepared: PreparedTurn, error: ModelError) -> None:
    """Every profile failed: the answer is failed (with what was tried) and the user told."""
    answer = prepared.answer
    answer.status = MessageStatus.FAILED
    answer.error = str(error)
    answer.attempts = error.attempts
    answer.tool_calls = error.tool_calls  # what was done before it failed
    answer.model_done_at = timezone.now()
    with transaction.atomic():
        answer.save(
            update_fields=[
                "status",
                "error",
                "attempts",
                "tool_calls",
                "model_done_at",
                "first_token_at",
            ]
        )
        publish(prepared.conversation.pk, MessageEvent(message_payload(answer)))
        tool_calls_publish(answer=answer)
        _fail_turn(prepared.conversation, prepared.pending, f"model call failed: {error}")


# Answers without a model ----------------------------------------------------------

# The fixed reply to each refusal the routing engine decides (by its code, never its text).
REFUSAL_REPLIES: dict[str, Promise] = {
    Failure.BOT_BUDGET: BOT_BUDGET_REPLY,
    Failure.USER_BUDGET: USER_BUDGET_REPLY,
}


def _answer_refused(conversation: Conversation, pending: list[Message], decision: Decision) -> None:
    """Carry out a decision with a `failure` code: the decision is stored on the messages."""
    if decision.failure == Failure.TAKEN_OVER:
        # Staff took over (or a rule handed it to them) after these arrived: they are
        # shown to staff, not answered.
        Message.objects.filter(pk__in=[m.pk for m in pending]).update(
            status=MessageStatus.SKIPPED, error="staff took over", decision=decision.record()
        )
    elif decision.failure in REFUSAL_REPLIES:
        _answer_fixed_turn(
            conversation,
            pending,
            REFUSAL_REPLIES[decision.failure],
            note="daily token budget reached",
            decision=decision,
        )
    else:  # Failure.NO_PROFILE, and any code this version does not know: an apology
        _fail_turn(conversation, pending, decision.reason, decision=decision)


def _answer_fixed_turn(
    conversation: Conversation,
    pending: list[Message],
    text: str | Promise,
    *,
    note: str,
    decision: Decision | None = None,
) -> None:
    """Answer the turn with a fixed reply and no model call (with its decision, if any)."""
    routed = (
        {"routing_rule_id": decision.rule_id, "decision": decision.record()} if decision else {}
    )
    with transaction.atomic():
        Message.objects.filter(pk__in=[m.pk for m in pending]).update(
            status=MessageStatus.ANSWERED, error=note, **routed
        )
        reply = reply_system(conversation=conversation, text=text, reply_to=pending[-1])
        if routed:
            rows_update(Message, [reply.pk], routed)


def _answer_by_rule(conversation: Conversation, pending: list[Message], decision: Decision) -> None:
    """A routing rule's answer without a model: a fixed reply, a hand-off to staff, or none.

    The decision is stored on the turn's messages and on the reply (if any).
    """
    routed = {"routing_rule_id": decision.rule_id, "decision": decision.record()}
    text: str | Promise = decision.reply_text
    with transaction.atomic():
        if decision.action == Action.REPLY:
            status, note = MessageStatus.ANSWERED, "answered by a routing rule"
        elif decision.action == Action.HANDOFF:
            status, note = MessageStatus.SKIPPED, "handed off to staff by a routing rule"
            text = text or HANDOFF_REPLY
            conversation_hand_off(
                conversation_id=conversation.pk,
                rule=decision.rule_name,
                text="\n".join(message.text for message in pending if message.text),
            )
        else:  # Action.IGNORE (and any action this code does not know yet)
            status, note, text = MessageStatus.SKIPPED, "ignored by a routing rule", ""
        Message.objects.filter(pk__in=[m.pk for m in pending]).update(
            status=status, error=note, **routed
        )
        for message in pending:
            message.status, message.error = status, note
            publish(conversation.pk, MessageEvent(message_payload(message)))
        if text:
            reply = reply_system(conversation=conversation, text=text, reply_to=pending[-1])
            rows_update(Message, [reply.pk], routed)


# Failure and retry -------------------------------------------------------------


def _fail_turn(
    conversation: Conversation,
    pending: list[Message],
    error: str,
    *,
    decision: Decision | None = None,
) -> None:
    """Mark the turn's messages failed (visible in the admin) and tell the user."""
    logger.error("conversation %s: %s", conversation.pk, error)
    routed = {"decision": decision.record()} if decision is not None else {}
    with transaction.atomic():
        Message.objects.filter(pk__in=[m.pk for m in pending]).update(
            status=MessageStatus.FAILED, error=error, **routed
        )
        reply_system(conversation=conversation, text=APOLOGY, reply_to=pending[-1])


class MessageNotRetryable(Exception):
    """Only failed messages can be retried."""


@transaction.atomic
def message_retry(*, message_id: int) -> Message:
    """Try a failed message again: re-deliver a failed delivery, or re-run a failed turn.

    For a failed answer or a failed user message, the user messages of that turn
    go back to `received` and a new turn is scheduled.
    """
    message = Message.objects.select_for_update().get(pk=message_id)
    if message.status != MessageStatus.FAILED:
        raise MessageNotRetryable(
            gettext("Message %(id)s is %(status)s, not failed.")
            % {"id": message_id, "status": message.get_status_display()}
        )
    if (
        message.direction == Direction.OUT
        and message.text
        and message.error.startswith("delivery failed")
    ):
        message.status = MessageStatus.ANSWERED
        message.delivery_attempts = 0
        message.error = ""
        message.save(update_fields=["status", "delivery_attempts", "error"])
        dispatch_delivery(message.pk)
        return message
    inbound = message if message.direction == Direction.IN else message.reply_to
    if inbound is None or inbound.direction != Direction.IN:
        raise MessageNotRetryable(
            gettext("Message %(id)s answers no user message.") % {"id": message_id}
        )
    turn = Message.objects.filter(
        conversation_id=inbound.conversation_id,
        direction=Direction.IN,
        status=MessageStatus.FAILED,
        error=inbound.error,
        id__lte=inbound.pk,
    )
    if inbound.status != MessageStatus.FAILED:
        turn = Message.objects.none()
    retried = turn.update(status=MessageStatus.RECEIVED, error="", model_started_at=None)
    if not retried:
        raise MessageNotRetryable(
            gettext("The user message of %(id)s is not failed.") % {"id": message_id}
        )
    dispatch_turn(inbound.conversation_id)
    inbound.refresh_from_db()
    publish(inbound.conversation_id, MessageEvent(message_payload(inbound)))
    return inbound
