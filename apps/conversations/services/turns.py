"""Turns: one at a time per conversation, answering everything pending together."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import LockError

from apps.bots.platforms.base import DeliveryError, InboundAttachment, PlatformAdapter, adapter_for
from apps.conversations.choices import AttachmentKind, Author, Direction, MessageStatus
from apps.conversations.events import MessageEvent, TokenEvent, message_payload, publish
from apps.conversations.models import Conversation, Message, MessageAttachment
from apps.conversations.services.delivery import message_deliver, outbound_for, reply_system
from apps.conversations.services.dispatch import dispatch_delivery, dispatch_turn
from apps.core.redis import get_redis
from apps.providers.client import (
    ChatMessage,
    ModelError,
    estimate_message_tokens,
    image_part,
    messages_with_system,
    stream_reply,
    text_part,
    transcribe,
)
from apps.providers.client import complete as model_complete
from apps.providers.models import ModelProfile
from apps.providers.selectors import usage_totals
from apps.providers.services import usage_cost
from apps.routing.engine import route

logger = logging.getLogger(__name__)

APOLOGY = "Sorry, I could not answer that just now. The team has been notified."
BOT_BUDGET_REPLY = (
    "Sorry, this assistant has used up its daily allowance. Please try again tomorrow."
)
USER_BUDGET_REPLY = (
    "Sorry, you have reached today's limit for this assistant. Please try again tomorrow."
)
NO_IMAGES_REPLY = "Sorry, I can't look at images here. Please describe what you need in words."
NO_VOICE_REPLY = "Sorry, I can't listen to voice messages here. Please write your question instead."
UNREADABLE_REPLY = "Sorry, I couldn't read what you sent. Please write your question as text."
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
HISTORY_ROWS_LIMIT = 400  # rows read per turn at most; older ones are in the summary
SUMMARY_PROMPT = (
    "You maintain a running summary of a chat between a user and an assistant. "
    "Rewrite the summary so that it includes the new turns below: keep names, facts, "
    "decisions, open questions and the user's preferences; drop pleasantries. "
    "Answer with the summary only, at most 200 words."
)


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


@dataclass
class _Input:
    """One pending user message as the model will see it."""

    message: Message
    text: str
    images: list[tuple[bytes, str]] = field(default_factory=list)
    voice_unsupported: bool = False
    unreadable: bool = False

    def content_for(self, profile: ModelProfile) -> str | list[dict]:
        text = self.text
        notes = []
        if self.images and not profile.accepts_images:
            notes.append("[The user sent an image, which you cannot see.]")
        if self.voice_unsupported:
            notes.append("[The user sent a voice message, which you cannot hear.]")
        if self.unreadable:
            notes.append("[The user sent a file that could not be read.]")
        text = "\n".join([part for part in [text, *notes] if part])
        if self.images and profile.accepts_images:
            parts = [text_part(text)] if text else []
            return parts + [image_part(data, mime) for data, mime in self.images]
        return text

    def understood_by(self, profile: ModelProfile) -> bool:
        return bool(self.text) or bool(self.images and profile.accepts_images)


def _run_turn(conversation_id: int, pending: list[Message]) -> None:
    conversation = Conversation.objects.select_related("bot").get(pk=conversation_id)
    decision = route(conversation=conversation)
    if decision.profile is None:
        _fail_turn(conversation, pending, decision.reason)
        return
    profile = decision.profile

    refusal = _budget_refusal(conversation, pending)
    if refusal is not None:
        _answer_fixed_turn(conversation, pending, refusal, note="daily token budget reached")
        return

    adapter = adapter_for(conversation.bot)
    inputs = [_input_for(adapter, message, profile) for message in pending]
    if not any(item.understood_by(profile) for item in inputs):
        _answer_fixed_turn(
            conversation, pending, _unsupported_reply(inputs), note="input not supported"
        )
        return

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

    cache_key = _cache_key(conversation, profile, pending, inputs)
    if cache_key is not None:
        cached = get_redis().get(cache_key)
        if cached is not None:
            _record_answer(conversation_id, answer, pending, text=cached.decode(), cached=True)
            message_deliver(message_id=answer.pk)
            return

    chat_stream = _StreamToChat(adapter, answer)
    with contextlib.suppress(Exception):
        adapter.typing(chat_stream.outbound)

    history = _history_rows(conversation, before_id=pending[0].pk)
    history = _compact_if_needed(conversation, profile, history, inputs)
    build = _prompt_builder(conversation, history, inputs)

    def on_delta(delta: str) -> None:
        if answer.first_token_at is None:
            answer.first_token_at = timezone.now()
        publish(conversation_id, TokenEvent(message_id=answer.pk, delta=delta))
        chat_stream.add(delta)

    try:
        reply = stream_reply(profile=profile, build=build, on_delta=on_delta)
    except ModelError as error:
        answer.status = MessageStatus.FAILED
        answer.error = str(error)
        answer.attempts = error.attempts
        answer.model_done_at = timezone.now()
        answer.save(
            update_fields=["status", "error", "attempts", "model_done_at", "first_token_at"]
        )
        publish(conversation_id, MessageEvent(message_payload(answer)))
        _fail_turn(conversation, pending, f"model call failed: {error}")
        return

    _record_answer(conversation_id, answer, pending, text=reply.text, reply=reply)
    if cache_key is not None and not reply.interrupted and reply.profile.pk == profile.pk:
        get_redis().set(cache_key, reply.text, ex=profile.cache_ttl)
    message_deliver(message_id=answer.pk)


def _record_answer(
    conversation_id: int,
    answer: Message,
    pending: list[Message],
    *,
    text: str,
    reply=None,
    cached: bool = False,
) -> None:
    with transaction.atomic():
        answer.text = text
        answer.status = MessageStatus.ANSWERED
        answer.model_done_at = timezone.now()
        answer.cached = cached
        if reply is not None:
            answer.profile = reply.profile
            answer.attempts = reply.attempts
            answer.prompt_tokens = reply.usage.prompt_tokens
            answer.completion_tokens = reply.usage.completion_tokens
            answer.tokens_estimated = reply.usage.estimated
            answer.cost = usage_cost(
                profile=reply.profile,
                prompt_tokens=reply.usage.prompt_tokens,
                completion_tokens=reply.usage.completion_tokens,
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
        answer.save()
        Message.objects.filter(pk__in=[m.pk for m in pending]).update(status=MessageStatus.ANSWERED)
        Conversation.objects.filter(pk=conversation_id).update(last_activity_at=timezone.now())
        publish(conversation_id, MessageEvent(message_payload(answer)))


# Budgets -------------------------------------------------------------------


def _budget_refusal(conversation: Conversation, pending: list[Message]) -> str | None:
    """The fixed reply when the bot or the sender used up today's tokens, else None."""
    bot = conversation.bot
    today = timezone.localdate()
    if bot.daily_token_budget is not None:
        used = usage_totals(bot_id=bot.pk, day=today).total_tokens
        if used >= bot.daily_token_budget:
            return BOT_BUDGET_REPLY
    if bot.user_daily_token_budget is not None and pending[-1].sender_id:
        used = usage_totals(bot_id=bot.pk, sender_id=pending[-1].sender_id, day=today)
        if used.total_tokens >= bot.user_daily_token_budget:
            return USER_BUDGET_REPLY
    return None


def _answer_fixed_turn(
    conversation: Conversation, pending: list[Message], text: str, *, note: str
) -> None:
    """Answer the turn with a fixed reply and no model call."""
    with transaction.atomic():
        Message.objects.filter(pk__in=[m.pk for m in pending]).update(
            status=MessageStatus.ANSWERED, error=note
        )
        reply_system(conversation=conversation, text=text, reply_to=pending[-1])


# Attachments -----------------------------------------------------------------


def _input_for(adapter: PlatformAdapter, message: Message, profile: ModelProfile) -> _Input:
    """Download a message's media (once; bytes kept in MessageAttachment.content) and read it."""
    item = _Input(message=message, text=message.text)
    transcripts: list[str] = []
    for attachment in message.attachments.all():
        data = _attachment_bytes(adapter, message, attachment)
        if data is None:
            item.unreadable = True
            continue
        if attachment.kind == AttachmentKind.IMAGE:
            item.images.append((data, attachment.mime_type or "image/jpeg"))
        elif attachment.kind == AttachmentKind.AUDIO:
            if not profile.transcription_model:
                item.voice_unsupported = True
                continue
            try:
                transcripts.append(
                    transcribe(
                        profile=profile,
                        audio=data,
                        file_name=attachment.file_name or "voice.ogg",
                        mime_type=attachment.mime_type,
                    )
                )
            except ModelError as error:
                logger.warning("transcription of attachment %s failed: %s", attachment.pk, error)
                MessageAttachment.objects.filter(pk=attachment.pk).update(
                    error=f"transcription failed: {error}"
                )
                item.unreadable = True
        else:
            item.unreadable = True
    if transcripts:
        item.text = "\n".join([part for part in [item.text, *transcripts] if part])
    return item


def _attachment_bytes(
    adapter: PlatformAdapter, message: Message, attachment: MessageAttachment
) -> bytes | None:
    if attachment.content:
        with attachment.content.open("rb") as stored:
            return stored.read()
    if attachment.size and attachment.size > MAX_DOWNLOAD_BYTES:
        attachment.error = "too large to download"
        attachment.save(update_fields=["error"])
        return None
    try:
        data = adapter.download(
            message_platform_id=message.platform_message_id,
            attachment=InboundAttachment(
                kind=attachment.kind,
                platform_file_id=attachment.platform_file_id,
                mime_type=attachment.mime_type,
                file_name=attachment.file_name,
                size=attachment.size,
            ),
        )
    except Exception as error:  # noqa: BLE001 - any platform failure: answer without the file
        logger.warning("download of attachment %s failed: %s", attachment.pk, error)
        attachment.error = f"download failed: {error}"
        attachment.save(update_fields=["error"])
        return None
    name = attachment.file_name or f"{attachment.kind}-{attachment.pk}"
    attachment.content.save(name, ContentFile(data), save=False)
    attachment.size = len(data)
    attachment.error = ""
    attachment.save(update_fields=["content", "size", "error"])
    return data


def _unsupported_reply(inputs: list[_Input]) -> str:
    if any(item.images for item in inputs):
        return NO_IMAGES_REPLY
    if any(item.voice_unsupported for item in inputs):
        return NO_VOICE_REPLY
    return UNREADABLE_REPLY


# Response cache ----------------------------------------------------------------


def _cache_key(
    conversation: Conversation, profile: ModelProfile, pending: list[Message], inputs: list[_Input]
) -> str | None:
    """The cache key for a first question (no history, text only), or None when not cacheable."""
    if not profile.cache_ttl or len(pending) != 1 or inputs[0].images or not inputs[0].text:
        return None
    if pending[0].attachments.exists() or conversation.summary:
        return None
    earlier = Message.objects.filter(conversation=conversation, id__lt=pending[0].pk).exclude(
        author=Author.SYSTEM
    )
    if earlier.exists():
        return None
    identity = "\x1f".join(
        [
            str(profile.pk),
            profile.updated_at.isoformat() if profile.updated_at else "",
            profile.model,
            profile.system_prompt,
            pending[0].text.strip(),
        ]
    )
    return "assistant:answer-cache:" + hashlib.sha256(identity.encode()).hexdigest()


# Context -----------------------------------------------------------------------


def _history_rows(conversation: Conversation, *, before_id: int) -> list[tuple[int, str, str]]:
    """Earlier answered turns not yet covered by the summary, oldest first: (id, role, text)."""
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
    )
    if conversation.summary_until is not None:
        rows = rows.filter(id__gt=conversation.summary_until)
    rows = rows.order_by("-id").values_list("id", "direction", "text")[:HISTORY_ROWS_LIMIT]
    return [
        (pk, "user" if direction == Direction.IN else "assistant", text)
        for pk, direction, text in reversed(rows)
    ]


def _fixed_messages(
    conversation: Conversation, profile: ModelProfile, inputs: list[_Input]
) -> tuple[list[ChatMessage], list[ChatMessage]]:
    head = messages_with_system(profile, [])
    if conversation.summary:
        head.append(
            ChatMessage("system", f"Summary of the earlier conversation:\n{conversation.summary}")
        )
    current = [ChatMessage("user", item.content_for(profile)) for item in inputs]
    return head, current


def _history_budget(
    conversation: Conversation, profile: ModelProfile, inputs: list[_Input], squeeze: int = 0
) -> int:
    head, current = _fixed_messages(conversation, profile, inputs)
    budget = profile.context_budget - profile.max_tokens
    budget -= sum(estimate_message_tokens(m) for m in head + current)
    return max(0, budget // (2**squeeze))


def _fit(history: list[tuple[int, str, str]], *, budget: int, limit: int) -> int:
    """How many of the newest history rows fit in `budget` tokens and `limit` messages."""
    used = 0
    count = 0
    for _pk, role, text in reversed(history):
        cost = estimate_message_tokens(ChatMessage(role, text))
        if count >= limit or used + cost > budget:
            break
        used += cost
        count += 1
    return count


def _prompt_builder(
    conversation: Conversation, history: list[tuple[int, str, str]], inputs: list[_Input]
):
    def build(candidate: ModelProfile, squeeze: int) -> list[ChatMessage]:
        head, current = _fixed_messages(conversation, candidate, inputs)
        budget = _history_budget(conversation, candidate, inputs, squeeze)
        limit = candidate.history_messages if squeeze < 2 else 0
        kept = _fit(history, budget=budget, limit=limit)
        recent = history[len(history) - kept :] if kept else []
        return head + [ChatMessage(role, text) for _pk, role, text in recent] + current

    return build


def _compact_if_needed(
    conversation: Conversation,
    profile: ModelProfile,
    history: list[tuple[int, str, str]],
    inputs: list[_Input],
) -> list[tuple[int, str, str]]:
    """When older turns no longer fit, fold them into Conversation.summary via the model.

    Keeps the newest turns that fit in half the history budget, so compaction
    runs every few turns rather than on each one. Returns the history left.
    """
    budget = _history_budget(conversation, profile, inputs)
    if _fit(history, budget=budget, limit=profile.history_messages) == len(history):
        return history
    keep = _fit(history, budget=budget // 2, limit=profile.history_messages // 2)
    older, newer = history[: len(history) - keep], history[len(history) - keep :]
    if not older:
        return history
    transcript = "\n".join(f"{role}: {text}" for _pk, role, text in older)
    previous = conversation.summary or "(none yet)"
    request = [
        ChatMessage("system", SUMMARY_PROMPT),
        ChatMessage("user", f"Summary so far:\n{previous}\n\nNew turns:\n{transcript}"),
    ]
    try:
        summary = model_complete(profile=profile, messages=request)
    except ModelError as error:
        # The answer still goes out, with only the newest turns as context.
        logger.warning("compaction of conversation %s failed: %s", conversation.pk, error)
        return history
    if summary.interrupted or not summary.text.strip():
        return history
    conversation.summary = summary.text.strip()
    conversation.summary_until = older[-1][0]
    Conversation.objects.filter(pk=conversation.pk).update(
        summary=conversation.summary, summary_until=conversation.summary_until
    )
    return newer


# Failure and retry -------------------------------------------------------------


def _fail_turn(conversation: Conversation, pending: list[Message], error: str) -> None:
    """Mark the turn's messages failed (visible in the admin) and tell the user."""
    logger.error("conversation %s: %s", conversation.pk, error)
    with transaction.atomic():
        Message.objects.filter(pk__in=[m.pk for m in pending]).update(
            status=MessageStatus.FAILED, error=error
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
        raise MessageNotRetryable(f"message {message_id} is {message.status}, not failed")
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
        raise MessageNotRetryable(f"message {message_id} answers no user message")
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
        raise MessageNotRetryable(f"the user message of {message_id} is not failed")
    dispatch_turn(inbound.conversation_id)
    inbound.refresh_from_db()
    publish(inbound.conversation_id, MessageEvent(message_payload(inbound)))
    return inbound
