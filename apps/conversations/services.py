"""The reply pipeline: ingest, one turn at a time per conversation, delivery.

See DESIGN.md "The life of a message". The database is the source of truth:
every step reads state from rows and is safe to run twice.
"""

from __future__ import annotations

import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import LockError

from apps.bots.choices import Platform
from apps.bots.models import Bot
from apps.bots.platforms.base import DeliveryError, InboundMessage, OutboundMessage, adapter_for
from apps.bots.platforms.web import WebChatAdapter
from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.events import MessageEvent, TokenEvent, message_payload, publish
from apps.conversations.models import Conversation, Message
from apps.core.redis import get_redis
from apps.providers.client import ChatMessage, ModelError, stream_reply
from apps.routing.engine import route

logger = logging.getLogger(__name__)

APOLOGY = "Sorry, I could not answer that just now. The team has been notified."


class TurnBusy(Exception):
    """Another worker is running a turn of this conversation right now."""


@dataclass(frozen=True)
class DeliveryRetry:
    """A delivery failed in a way that can heal: try again after `delay` seconds."""

    delay: float


def _dispatch_turn(conversation_id: int) -> None:
    from apps.conversations.tasks import respond_task

    respond_task.delay(conversation_id)


def _dispatch_delivery(message_id: int, countdown: float = 0) -> None:
    from apps.conversations.tasks import deliver_task

    deliver_task.apply_async(args=[message_id], countdown=countdown)


@transaction.atomic
def message_ingest(*, bot: Bot, inbound: InboundMessage) -> Message | None:
    """Store an inbound message and schedule its answer; None if already stored.

    Platforms deliver at least once; the (bot, external_id) constraint makes a
    repeated delivery a no-op.
    """
    if Message.objects.filter(
        bot=bot, direction=Direction.IN, external_id=inbound.external_id
    ).exists():
        return None
    now = timezone.now()
    conversation, created = Conversation.objects.get_or_create(
        bot=bot,
        chat_id=inbound.chat_id,
        defaults={
            "chat_type": inbound.chat_type,
            "participants": {inbound.sender_id: inbound.sender_name},
            "started_at": now,
            "last_activity_at": now,
        },
    )
    if not created:
        participants = dict(conversation.participants)
        participants[inbound.sender_id] = inbound.sender_name
        Conversation.objects.filter(pk=conversation.pk).update(
            participants=participants, last_activity_at=now
        )
    try:
        with transaction.atomic():
            message = Message.objects.create(
                conversation=conversation,
                bot=bot,
                direction=Direction.IN,
                author=Author.USER,
                sender_id=inbound.sender_id,
                text=inbound.text,
                external_id=inbound.external_id,
                platform_message_id=inbound.platform_message_id,
                status=MessageStatus.RECEIVED,
                received_at=now,
            )
    except IntegrityError:
        return None  # a concurrent delivery of the same event won the race
    publish(conversation.pk, MessageEvent(message_payload(message)))
    transaction.on_commit(lambda: _dispatch_turn(conversation.pk))
    return message


@dataclass
class WebChat:
    """A visitor's open web chat with a web bot."""

    bot: Bot
    adapter: WebChatAdapter
    visitor_id: str
    visitor_name: str
    conversation_id: int | None
    history: list[dict]


def web_chat_open(
    *, bot_id, visitor_id: str | None, is_staff: bool, visitor_name: str
) -> WebChat | None:
    """Open a web chat for a visitor; None when they may not use this bot."""
    bot = Bot.objects.filter(pk=bot_id, platform=Platform.WEB).first()
    if bot is None or not visitor_id or not (bot.enabled or is_staff):
        return None
    conversation = Conversation.objects.filter(bot=bot, chat_id=visitor_id).first()
    history = (
        [message_payload(m) for m in conversation.messages.order_by("id")] if conversation else []
    )
    return WebChat(
        bot=bot,
        adapter=WebChatAdapter(bot),
        visitor_id=visitor_id,
        visitor_name=visitor_name,
        conversation_id=conversation.pk if conversation else None,
        history=history,
    )


def web_chat_conversation(*, chat: WebChat, inbound: InboundMessage) -> int:
    """The conversation a web chat's message goes to, created on the first message."""
    conversation, _ = Conversation.objects.get_or_create(
        bot=chat.bot,
        chat_id=inbound.chat_id,
        defaults={
            "chat_type": inbound.chat_type,
            "participants": {inbound.sender_id: inbound.sender_name},
        },
    )
    chat.conversation_id = conversation.pk
    return conversation.pk


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

    messages = _history(conversation, pending[0].pk, profile.history_messages)
    messages += [ChatMessage("user", message.text) for message in pending]

    def on_delta(delta: str) -> None:
        if answer.first_token_at is None:
            answer.first_token_at = timezone.now()
        publish(conversation_id, TokenEvent(message_id=answer.pk, delta=delta))

    try:
        reply = stream_reply(profile=profile, messages=messages, on_delta=on_delta)
    except ModelError as error:
        answer.status = MessageStatus.FAILED
        answer.error = str(error)
        answer.model_done_at = timezone.now()
        answer.save(update_fields=["status", "error", "model_done_at", "first_token_at"])
        _fail_turn(conversation, pending, f"model call failed: {error}")
        return

    with transaction.atomic():
        answer.text = reply.text
        answer.profile = reply.profile
        answer.status = MessageStatus.ANSWERED
        answer.error = "; ".join(f"skipped {note}" for note in reply.skipped)
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
        apology = Message.objects.create(
            conversation=conversation,
            bot=conversation.bot,
            direction=Direction.OUT,
            author=Author.SYSTEM,
            text=APOLOGY,
            status=MessageStatus.ANSWERED,
            reply_to=pending[-1],
            model_done_at=timezone.now(),
        )
        publish(conversation.pk, MessageEvent(message_payload(apology)))
    message_deliver(message_id=apology.pk)


def message_deliver(*, message_id: int) -> Message | DeliveryRetry | None:
    """Send a generated answer to its chat, once.

    The answer is recorded (status answered) before sending, so a retried call
    only sends what is not yet delivered. Returns the delivered message, a
    DeliveryRetry when a retryable failure was scheduled again, or None.
    """
    lock = get_redis().lock(f"assistant:deliver:{message_id}", timeout=120, blocking=False)
    if not lock.acquire():
        return None
    try:
        message = Message.objects.select_related("conversation__bot", "reply_to").get(pk=message_id)
        if message.status != MessageStatus.ANSWERED:
            return None
        conversation = message.conversation
        outbound = OutboundMessage(
            conversation_id=conversation.pk,
            message_id=message.pk,
            chat_id=conversation.chat_id,
            text=message.text,
            reply_to_platform_message_id=(
                message.reply_to.platform_message_id if message.reply_to else ""
            ),
        )
        message.delivery_attempts += 1
        try:
            sent = adapter_for(conversation.bot).send(outbound)
        except DeliveryError as error:
            message.error = f"delivery failed: {error}"
            if error.retryable and message.delivery_attempts < settings.DELIVERY_MAX_ATTEMPTS:
                message.save(update_fields=["error", "delivery_attempts"])
                delay = error.retry_after or _backoff(message.delivery_attempts)
                transaction.on_commit(lambda: _dispatch_delivery(message.pk, delay))
                return DeliveryRetry(delay)
            message.status = MessageStatus.FAILED
            message.save(update_fields=["status", "error", "delivery_attempts"])
            publish(conversation.pk, MessageEvent(message_payload(message)))
            return None
        message.status = MessageStatus.DELIVERED
        message.platform_message_id = sent.platform_message_id
        message.delivered_at = timezone.now()
        message.save(
            update_fields=["status", "platform_message_id", "delivered_at", "delivery_attempts"]
        )
        publish(conversation.pk, MessageEvent(message_payload(message)))
        return message
    finally:
        with contextlib.suppress(LockError):
            lock.release()


def _backoff(attempt: int) -> float:
    return min(60.0, 2.0**attempt) * (0.5 + random.random() / 2)  # noqa: S311


def messages_sweep() -> dict[str, int]:
    """Re-dispatch work a lost task or a dead worker left behind."""
    now = timezone.now()
    stale_received = now - timedelta(seconds=settings.SWEEP_RECEIVED_AFTER_SECONDS)
    stale_processing = now - timedelta(seconds=settings.TURN_LOCK_SECONDS)
    conversation_ids = set(
        Message.objects.filter(direction=Direction.IN)
        .filter(
            Q(status=MessageStatus.RECEIVED, received_at__lt=stale_received)
            | Q(status=MessageStatus.PROCESSING, model_started_at__lt=stale_processing)
        )
        .values_list("conversation_id", flat=True)
    )
    for conversation_id in conversation_ids:
        _dispatch_turn(conversation_id)
    undelivered = list(
        Message.objects.filter(
            direction=Direction.OUT,
            status=MessageStatus.ANSWERED,
            model_done_at__lt=now - timedelta(seconds=settings.SWEEP_RECEIVED_AFTER_SECONDS * 2),
        ).values_list("id", flat=True)
    )
    for message_id in undelivered:
        _dispatch_delivery(message_id)
    return {"turns": len(conversation_ids), "deliveries": len(undelivered)}
