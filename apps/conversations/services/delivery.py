"""Delivering recorded answers, exactly once, and sweeping up stuck work."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.functional import Promise

from apps.bots.platforms import adapter_for
from apps.bots.platforms.base import (
    DeliveryError,
    OutboundMessage,
    SentMessage,
    platform_send,
)
from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.events import MessageEvent, message_payload, publish
from apps.conversations.models import Conversation, Message
from apps.conversations.selectors import reply_language
from apps.conversations.services.chats import chat_migrate
from apps.conversations.services.dispatch import dispatch_delivery, dispatch_turn, turn_lock_key
from apps.core import metrics
from apps.core.aio import process_loop
from apps.core.liveness import (
    BEAT_SECONDS,
    dead_processes_taken,
    owner_of,
    processes_dead,
    taken_key,
)
from apps.core.locks import held_locks, locks_break
from apps.core.redis import get_redis
from apps.core.retry import backoff_delay
from apps.core.sql import rows_update

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryRetry:
    """A delivery failed in a way that can heal: it is tried again after `delay` seconds."""

    delay: float


def reply_system(
    *, conversation: Conversation, text: str | Promise, reply_to: Message | None
) -> Message:
    """Record a fixed reply (help text, access notice, apology) and schedule its delivery."""
    with translation.override(reply_language(bot=conversation.bot, message=reply_to)):
        text = str(text)  # a lazy reply is put in the language the bot replies in
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


def notice_send(*, bot, chat_id: str, chat_type: str, text: str) -> Message:
    """Record a system message in a chat's open conversation and deliver it now.

    For messages the platform sends on its own (the set-up wizard's test message): stored
    like any answer, so the console shows it and delivery stays exactly-once. Returns the
    message after the attempt: `delivered`, `failed` with its error, or still `answered`
    when a retryable failure left it to the workers.
    """
    with transaction.atomic():
        now = timezone.now()
        conversation, _ = Conversation.objects.get_or_create(
            bot=bot,
            chat_id=chat_id,
            closed_at__isnull=True,
            defaults={"chat_type": chat_type, "started_at": now, "last_activity_at": now},
        )
        message = Message.objects.create(
            conversation=conversation,
            bot_id=bot.pk,
            direction=Direction.OUT,
            author=Author.SYSTEM,
            text=text,
            status=MessageStatus.ANSWERED,
            model_done_at=now,
        )
        publish(conversation.pk, MessageEvent(message_payload(message)))
    message_deliver(message_id=message.pk)
    message.refresh_from_db()
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
    """Send a recorded answer to its chat, once (see `amessage_deliver`)."""
    return process_loop.run(amessage_deliver(message_id=message_id))


async def amessage_deliver(
    *, message_id: int, message: Message | None = None
) -> Message | DeliveryRetry | None:
    """Send a recorded answer to its chat, once, from the process loop.

    The answer is recorded (status answered) before sending, so a retried call
    only sends what is not yet delivered. Returns the delivered message, a
    DeliveryRetry when a retryable failure was scheduled again, or None.
    `message` is the answer as its turn just recorded it (saves reading it again).
    """
    key = delivery_lock_key(message_id)
    try:
        locked = await held_locks.acquire(key)
    except redis.RedisError as error:
        # Redis restarting, nothing sent yet: the delivery is asked for again (held by
        # this process until the broker answers; the sweeper is the backstop).
        logger.warning("no delivery lock for %s (%s); asked for again", message_id, error)
        await process_loop.db(dispatch_delivery, message_id, 1.0)
        return None
    if not locked:
        # Another delivery of this message is finishing. If it leaves the message
        # undelivered (e.g. a retry requested the moment it failed), look again shortly;
        # a message already delivered or failed makes that later look a no-op.
        await process_loop.db(dispatch_delivery, message_id, 2.0)
        return None
    try:
        if message is None or message.status != MessageStatus.ANSWERED:
            message = await process_loop.db(_deliverable, message_id)
            if message is None:
                return None
        else:
            message.delivery_attempts += 1
        adapter = adapter_for(message.conversation.bot)
        try:
            sent = await platform_send(adapter, outbound_for(message))
        except DeliveryError as error:
            return await process_loop.db(_delivery_failed, message, error)
        return await process_loop.db(_delivered, message, sent)
    finally:
        await held_locks.release(key)


def delivery_lock_key(message_id: int) -> str:
    """The Redis key a running delivery holds (renewed) for its message."""
    return f"assistant:deliver:{message_id}"


def _deliverable(message_id: int) -> Message | None:
    message = Message.objects.select_related("conversation__bot", "reply_to").get(pk=message_id)
    if message.status != MessageStatus.ANSWERED:
        return None
    message.delivery_attempts += 1
    return message


def _delivery_failed(message: Message, error: DeliveryError) -> DeliveryRetry | None:
    message.error = f"delivery failed: {error}"
    if error.chat_moved is not None:
        # The retry goes to the chat's new id (the conversation moves with it).
        chat_migrate(
            bot=message.conversation.bot,
            old_chat_id=error.chat_moved.old_chat_id,
            new_chat_id=error.chat_moved.new_chat_id,
        )
    if error.retryable and message.delivery_attempts < settings.DELIVERY_MAX_ATTEMPTS:
        message.save(update_fields=["error", "delivery_attempts"])
        delay = error.retry_after or backoff_delay(
            attempt=message.delivery_attempts + 1, base=1.0, cap=60.0
        )
        dispatch_delivery(message.pk, delay)
        metrics.delivery_record(platform=message.conversation.bot.platform, outcome="retry")
        return DeliveryRetry(delay)
    message.status = MessageStatus.FAILED
    message.save(update_fields=["status", "error", "delivery_attempts"])
    publish(message.conversation_id, MessageEvent(message_payload(message)))
    metrics.delivery_record(platform=message.conversation.bot.platform, outcome="failed")
    return None


def _delivered(message: Message, sent: SentMessage) -> Message:
    message.status = MessageStatus.DELIVERED
    message.platform_message_id = sent.platform_message_id
    message.delivered_at = timezone.now()
    rows_update(
        Message,
        [message.pk],
        {
            name: getattr(message, name)
            for name in ("status", "platform_message_id", "delivered_at", "delivery_attempts")
        },
    )
    publish(message.conversation_id, MessageEvent(message_payload(message)))
    metrics.delivery_record(platform=message.conversation.bot.platform, outcome="delivered")
    return message


@transaction.atomic
def messages_sweep() -> dict[str, int]:
    """Re-dispatch work a lost task or a dead worker left behind.

    - what a worker process that died had taken: its heartbeat (apps.core.liveness) is
      gone within seconds, so its conversations' locks are broken and they are answered
      at once, by the next turn, whether their messages were still `received` (taken from
      the queue, not started) or `processing` (a partial answer is finished, not repeated).
      Messages received about when it died (a beat before its last one to two after) are
      given again too, once: their task may have reached it after its last note;
    - a turn whose worker died: its messages are `processing` and its lock has expired
      (a live turn renews it every few seconds) or belongs to a process that died;
    - a message still `received` after SWEEP_RECEIVED_AFTER_SECONDS while the queue of
      turns is empty: its task was lost (a broker that restarted empty). While turns
      are queued, a waiting message is most likely among them, so it is left alone for
      up to ten times as long: re-dispatching a backlog would only make it longer;
    - an answer recorded but not delivered whose delivery lock has expired or belongs
      to a process that died.
    """
    now = timezone.now()
    deaths = processes_dead()
    gone = deaths.dead
    orphaned: set[int] = set()
    for process_id, taken in dead_processes_taken(gone).items():
        orphaned |= taken  # their locks are broken below, with any other a dead process held
        get_redis().delete(taken_key(process_id))
    received_after = settings.SWEEP_RECEIVED_AFTER_SECONDS
    if _turns_queued():
        received_after *= 10
    stale_received = now - timedelta(seconds=received_after)
    stale_processing = now - timedelta(seconds=settings.TURN_LOCK_SECONDS)
    pending = Q(status=MessageStatus.RECEIVED, received_at__lt=stale_received) | Q(
        status=MessageStatus.PROCESSING, model_started_at__lt=stale_processing
    )
    if orphaned:
        pending |= Q(
            conversation_id__in=orphaned,
            status__in=[MessageStatus.RECEIVED, MessageStatus.PROCESSING],
        )
    for last_beat in deaths.just_died.values():
        # A task that reached the process in its last milliseconds is not in its notes
        # (written just after): its message, received about when the process died, is
        # given again, once; if its task is in fact still queued, that one finds nothing.
        pending |= Q(
            status__in=[MessageStatus.RECEIVED, MessageStatus.PROCESSING],
            received_at__gte=last_beat - timedelta(seconds=BEAT_SECONDS),
            received_at__lte=last_beat + timedelta(seconds=2 * BEAT_SECONDS),
        )
    conversation_ids = sorted(
        set(
            Message.objects.filter(direction=Direction.IN)
            .filter(pending)
            .values_list("conversation_id", flat=True)
        )
    )
    # A turn whose lock is still renewed is alive (a long answer), not stuck.
    free, broken = _unlocked(conversation_ids, turn_lock_key, gone)
    conversation_ids = free + broken
    for conversation_id in conversation_ids:
        dispatch_turn(conversation_id)
    answered = Message.objects.filter(direction=Direction.OUT, status=MessageStatus.ANSWERED)
    if not gone:  # only a dead process's delivery is taken before it has been left a while
        answered = answered.filter(model_done_at__lt=stale_processing)
    done_at = dict(answered.values_list("id", "model_done_at"))
    # A delivery whose lock is still renewed is under way (a long or paced answer); a
    # free one has been left for a while, or its process died.
    free, broken = _unlocked(list(done_at), delivery_lock_key, gone)
    stale = [pk for pk in free if (done := done_at[pk]) is not None and done < stale_processing]
    undelivered = stale + broken
    for message_id in undelivered:
        dispatch_delivery(message_id)
    metrics.retry_record(stage="sweeper", count=len(conversation_ids) + len(undelivered))
    return {"turns": len(conversation_ids), "deliveries": len(undelivered)}


def _unlocked(ids: list[int], lock_key, dead: set[str]) -> tuple[list[int], list[int]]:
    """Of `ids`, those whose lock is free, and those whose lock a process that died held
    (broken now)."""
    if not ids:
        return [], []
    tokens = get_redis().mget([lock_key(pk) for pk in ids])
    owners = {pk: owner_of(token) for pk, token in zip(ids, tokens, strict=True)}
    gone = dead & set(owners.values())
    broken = [pk for pk, owner in owners.items() if owner in gone]
    for process_id in gone:
        locks_break([lock_key(pk) for pk in broken if owners[pk] == process_id], process_id)
    return [pk for pk, owner in owners.items() if owner is None], broken


def _turns_queued() -> int:
    """Turn tasks waiting in the broker (Redis or RabbitMQ); 0 when it cannot tell."""
    from assistant.celery import app

    try:
        with app.connection_for_read() as connection:
            try:
                # kombu's stubs type the abstract StdChannel; every transport's has it.
                declared = connection.default_channel.queue_declare(  # type: ignore[attr-defined]
                    queue=settings.CELERY_LLM_QUEUE, passive=True
                )
            except connection.channel_errors:
                return 0  # no such queue yet: Redis drops an empty list's key
            return declared.message_count
    except Exception:  # noqa: BLE001 - unknown is treated as empty: the sweep goes ahead
        logger.warning("could not read the length of the turn queue", exc_info=True)
        return 0
