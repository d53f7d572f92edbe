"""Delivering recorded answers, exactly once, and sweeping up stuck work."""

from __future__ import annotations

import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import LockError

from apps.bots.platforms.base import DeliveryError, OutboundMessage, adapter_for
from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.events import MessageEvent, message_payload, publish
from apps.conversations.models import Conversation, Message
from apps.conversations.services.dispatch import dispatch_delivery, dispatch_turn
from apps.core.redis import get_redis

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryRetry:
    """A delivery failed in a way that can heal: it is tried again after `delay` seconds."""

    delay: float


def reply_system(*, conversation: Conversation, text: str, reply_to: Message | None) -> Message:
    """Record a fixed reply (help text, access notice, apology) and schedule its delivery."""
    message = Message.objects.create(
        conversation=conversation,
        bot_id=conversation.bot_id,
        direction=Direction.OUT,
        author=Author.SYSTEM,
        text=text,
        status=MessageStatus.ANSWERED,
        reply_to=reply_to,
        model_done_at=timezone.now(),
    )
    publish(conversation.pk, MessageEvent(message_payload(message)))
    dispatch_delivery(message.pk)
    return message


def outbound_for(message: Message) -> OutboundMessage:
    """The platform-neutral form of a stored answer."""
    return OutboundMessage(
        conversation_id=message.conversation_id,
        message_id=message.pk,
        chat_id=message.conversation.chat_id,
        text=message.text,
        reply_to_platform_message_id=(
            message.reply_to.platform_message_id if message.reply_to else ""
        ),
        platform_message_id=message.platform_message_id,
        with_actions=message.author == Author.ASSISTANT,
    )


def message_deliver(*, message_id: int) -> Message | DeliveryRetry | None:
    """Send a recorded answer to its chat, once.

    The answer is recorded (status answered) before sending, so a retried call
    only sends what is not yet delivered. Returns the delivered message, a
    DeliveryRetry when a retryable failure was scheduled again, or None.
    """
    lock = get_redis().lock(f"assistant:deliver:{message_id}", timeout=120, blocking=False)
    if not lock.acquire():
        # Another delivery of this message is finishing. If it leaves the message
        # undelivered (e.g. a retry requested the moment it failed), look again shortly;
        # a message already delivered or failed makes that later look a no-op.
        dispatch_delivery(message_id, 2.0)
        return None
    try:
        message = Message.objects.select_related("conversation__bot", "reply_to").get(pk=message_id)
        if message.status != MessageStatus.ANSWERED:
            return None
        conversation = message.conversation
        message.delivery_attempts += 1
        try:
            sent = adapter_for(conversation.bot).send(outbound_for(message))
        except DeliveryError as error:
            message.error = f"delivery failed: {error}"
            if error.retryable and message.delivery_attempts < settings.DELIVERY_MAX_ATTEMPTS:
                message.save(update_fields=["error", "delivery_attempts"])
                delay = error.retry_after or _backoff(message.delivery_attempts)
                dispatch_delivery(message.pk, delay)
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


@transaction.atomic
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
        dispatch_turn(conversation_id)
    undelivered = list(
        Message.objects.filter(
            direction=Direction.OUT,
            status=MessageStatus.ANSWERED,
            model_done_at__lt=now - timedelta(seconds=settings.SWEEP_RECEIVED_AFTER_SECONDS * 2),
        ).values_list("id", flat=True)
    )
    for message_id in undelivered:
        dispatch_delivery(message_id)
    return {"turns": len(conversation_ids), "deliveries": len(undelivered)}
