"""Turns: one at a time per conversation, answering everything pending together."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import replace

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import LockError

from apps.bots.platforms.base import DeliveryError, PlatformAdapter, adapter_for
from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.events import MessageEvent, TokenEvent, message_payload, publish
from apps.conversations.models import Conversation, Message
from apps.conversations.services.delivery import message_deliver, outbound_for, reply_system
from apps.core.redis import get_redis
from apps.providers.client import ChatMessage, ModelError, stream_reply
from apps.routing.engine import route

logger = logging.getLogger(__name__)

APOLOGY = "Sorry, I could not answer that just now. The team has been notified."


class TurnBusy(Exception):
    """Another worker is running a turn of this conversation right now."""


def conversation_respond(*, conversation_id: int) -> int:
    """Answer everything pending in a conversation, one turn at a time.

    Returns the number of turns run. Raises TurnBusy when another worker holds
    the conversation; that worker answers what arrived meanwhile.
    """
    lock = get_redis().lock(
        f"assistant:turn:{conversation_id}", timeout=settings.TURN_LOCK_SECONDS, blocking=False
    )
    if not lock.acquire():
        raise TurnBusy(conversation_id)
    turns = 0
    try:
        while True:
            pending = _claim_pending(conversation_id)
            if not pending:
                return turns
            _run_turn(conversation_id, pending)
            turns += 1
    finally:
        try:
            lock.release()
        except LockError:
            logger.warning("turn lock for conversation %s expired mid-turn", conversation_id)


@transaction.atomic
def _claim_pending(conversation_id: int) -> list[Message]:
    # We hold the conversation's lock, so anything `processing` was left by a
    # turn that died: its inbound messages are answered again now, and its
    # half-generated answer is marked failed.
    Message.objects.filter(
        conversation_id=conversation_id, direction=Direction.OUT, status=MessageStatus.PROCESSING
    ).update(status=MessageStatus.FAILED, error="interrupted: the worker was lost mid-answer")
    pending = list(
        Message.objects.select_for_update()
        .filter(
            conversation_id=conversation_id,
            direction=Direction.IN,
            status__in=[MessageStatus.RECEIVED, MessageStatus.PROCESSING],
        )
        .order_by("id")
    )
    if not pending:
        return []
    if Conversation.objects.filter(pk=conversation_id, handled_by__isnull=False).exists():
        # Staff took over after these arrived: they are shown to staff, not answered.
        Message.objects.filter(pk__in=[m.pk for m in pending]).update(
            status=MessageStatus.SKIPPED, error="staff took over"
        )
        return []
    now = timezone.now()
    for message in pending:
        message.status = MessageStatus.PROCESSING
        message.model_started_at = now
    Message.objects.bulk_update(pending, ["status", "model_started_at"])
    return pending


def _history(conversation: Conversation, before_id: int, limit: int) -> list[ChatMessage]:
    if limit == 0:
        return []
    rows = (
        Message.objects.filter(conversation=conversation, id__lt=before_id)
        .filter(
            Q(direction=Direction.IN, status=MessageStatus.ANSWERED)
            | Q(
                direction=Direction.OUT,
                status__in=[MessageStatus.ANSWERED, MessageStatus.DELIVERED],
            )
        )
        .exclude(author=Author.SYSTEM)
        .order_by("-id")
        .values_list("direction", "text")[:limit]
    )
    return [
        ChatMessage("user" if direction == Direction.IN else "assistant", text)
        for direction, text in reversed(rows)
    ]


class _StreamToChat:
    """Shows the answer in the chat while it streams, throttled to the platform's pace."""

    def __init__(self, adapter: PlatformAdapter, answer: Message):
        self.adapter = adapter
        self.interval = getattr(adapter, "stream_interval", None)
        self.outbound = outbound_for(answer)
        self.answer = answer
        self.text = ""
        self.last_update = 0.0
        self.broken = False

    def add(self, delta: str) -> None:
        self.text += delta
        if self.interval is None or self.broken:
            return
        now = time.monotonic()
        if now - self.last_update < self.interval:
            return
        self.last_update = now
        try:
            platform_message_id = self.adapter.stream_update(self.outbound, self.text)
        except DeliveryError as error:
            # The final send() still delivers the whole answer.
            logger.warning("streaming to the chat stopped: %s", error)
            self.broken = True
            return
        if platform_message_id and not self.outbound.platform_message_id:
            self.outbound = replace(self.outbound, platform_message_id=platform_message_id)
            # Recorded at once, so a retried delivery edits this message, never sends another.
            Message.objects.filter(pk=self.answer.pk).update(
                platform_message_id=platform_message_id
            )
            self.answer.platform_message_id = platform_message_id


def _run_turn(conversation_id: int, pending: list[Message]) -> None:
    conversation = Conversation.objects.select_related("bot").get(pk=conversation_id)
    decision = route(conversation=conversation)
    if decision.profile is None:
        _fail_turn(conversation, pending, decision.reason)
        return
    profile = decision.profile
    answer = Message.objects.create(
        conversation=conversation,
        bot=conversation.bot,
        direction=Direction.OUT,
        author=Author.ASSISTANT,
        status=MessageStatus.PROCESSING,
        reply_to=pending[-1],
        profile=profile,
        model_started_at=timezone.now(),
    )
    publish(conversation_id, MessageEvent(message_payload(answer)))
    adapter = adapter_for(conversation.bot)
    chat_stream = _StreamToChat(adapter, answer)
    with contextlib.suppress(Exception):
        adapter.typing(chat_stream.outbound)

    messages = _history(conversation, pending[0].pk, profile.history_messages)
    messages += [ChatMessage("user", message.text) for message in pending]

    def on_delta(delta: str) -> None:
        if answer.first_token_at is None:
            answer.first_token_at = timezone.now()
        publish(conversation_id, TokenEvent(message_id=answer.pk, delta=delta))
        chat_stream.add(delta)

    try:
        reply = stream_reply(profile=profile, messages=messages, on_delta=on_delta)
    except ModelError as error:
        answer.status = MessageStatus.FAILED
        answer.error = str(error)
        answer.model_done_at = timezone.now()
        answer.save(update_fields=["status", "error", "model_done_at", "first_token_at"])
        publish(conversation_id, MessageEvent(message_payload(answer)))
        _fail_turn(conversation, pending, f"model call failed: {error}")
        return

    with transaction.atomic():
        answer.text = reply.text
        answer.profile = reply.profile
        answer.status = MessageStatus.ANSWERED
        answer.attempts = reply.skipped
        answer.prompt_tokens = reply.usage.prompt_tokens
        answer.completion_tokens = reply.usage.completion_tokens
        answer.tokens_estimated = reply.usage.estimated
        answer.model_done_at = timezone.now()
        answer.save()
        Message.objects.filter(pk__in=[m.pk for m in pending]).update(status=MessageStatus.ANSWERED)
        Conversation.objects.filter(pk=conversation_id).update(last_activity_at=timezone.now())
        publish(conversation_id, MessageEvent(message_payload(answer)))
    message_deliver(message_id=answer.pk)


def _fail_turn(conversation: Conversation, pending: list[Message], error: str) -> None:
    """Mark the turn's messages failed (visible in the admin) and tell the user."""
    logger.error("conversation %s: %s", conversation.pk, error)
    with transaction.atomic():
        Message.objects.filter(pk__in=[m.pk for m in pending]).update(
            status=MessageStatus.FAILED, error=error
        )
        reply_system(conversation=conversation, text=APOLOGY, reply_to=pending[-1])
