"""What the model is given besides the new messages: the earlier turns that fit its
context (older ones folded into the conversation's running summary), the system prompts,
and the key of the response cache for a first question.
"""

from __future__ import annotations

import hashlib
import logging
from functools import cache

from django.db import connection

from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Conversation, Message
from apps.conversations.services.turn_inputs import TurnInput
from apps.core.masking import mask_personal_data
from apps.core.sql import model_column
from apps.providers.client import (
    ChatMessage,
    ModelError,
    estimate_message_tokens,
    messages_with_system,
)
from apps.providers.client import complete as model_complete
from apps.providers.models import ModelProfile

logger = logging.getLogger(__name__)

HISTORY_ROWS_LIMIT = 400  # rows read per turn at most; older ones are in the summary
SUMMARY_PROMPT = (
    "You maintain a running summary of a chat between a user and an assistant. "
    "Rewrite the summary so that it includes the new turns below: keep names, facts, "
    "decisions, open questions and the user's preferences; drop pleasantries. "
    "Answer with the summary only, at most 200 words."
)


def turn_cache_key(
    conversation: Conversation,
    profile: ModelProfile,
    pending: list[Message],
    inputs: list[TurnInput],
    *,
    extra: str = "",
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
            *(
                [extra] if extra else []
            ),  # keys of answers without a rule's prompt stay as they were
            pending[0].text.strip(),
        ]
    )
    return "assistant:answer-cache:" + hashlib.sha256(identity.encode()).hexdigest()


def turn_history_rows(conversation: Conversation, *, before_id: int) -> list[tuple[int, str, str]]:
    """Earlier answered turns not yet covered by the summary, oldest first: (id, role, text)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _history_sql(),
            [
                conversation.pk,
                before_id,
                conversation.summary_until or 0,
                Author.SYSTEM,
                Direction.IN,
                MessageStatus.ANSWERED,
                Direction.OUT,
                MessageStatus.ANSWERED,
                MessageStatus.DELIVERED,
                HISTORY_ROWS_LIMIT,
            ],
        )
        history = cursor.fetchall()
    mask = mask_personal_data if conversation.bot.mask_personal_data else str
    return [
        (pk, "user" if direction == Direction.IN else "assistant", mask(text))
        for pk, direction, text in reversed(history)
    ]


@cache
def _history_sql() -> str:
    """The newest answered turns of a conversation between two ids (newest first), not
    the system's own notes. Written as SQL for the reason `turns._pending_sql` gives (the ORM
    compiled this query for ~0.7 ms of CPU on every turn). Parameters: conversation id,
    before id, after id (the summary's end, or 0), the system author, direction in and
    its status, direction out and its two statuses, the row limit."""
    quote = connection.ops.quote_name

    def column(name: str) -> str:
        return quote(model_column(Message, name))

    return (
        f"SELECT {column('id')}, {column('direction')}, {column('text')} "  # noqa: S608
        f"FROM {quote(Message._meta.db_table)} "
        f"WHERE {column('conversation')} = %s AND {column('id')} < %s AND {column('id')} > %s "
        f"AND {column('author')} <> %s "
        f"AND (({column('direction')} = %s AND {column('status')} = %s) "
        f"OR ({column('direction')} = %s AND {column('status')} IN (%s, %s))) "
        f"ORDER BY {column('id')} DESC LIMIT %s"
    )


def _fixed_messages(
    conversation: Conversation, profile: ModelProfile, inputs: list[TurnInput], extra: str = ""
) -> tuple[list[ChatMessage], list[ChatMessage]]:
    head = messages_with_system(profile, [])
    if extra:  # a routing rule's addition to the profile's system prompt
        head.append(ChatMessage("system", extra))
    if conversation.summary:
        head.append(
            ChatMessage("system", f"Summary of the earlier conversation:\n{conversation.summary}")
        )
    current = [ChatMessage("user", item.content_for(profile)) for item in inputs]
    return head, current


def _history_budget(
    conversation: Conversation,
    profile: ModelProfile,
    inputs: list[TurnInput],
    squeeze: int = 0,
    *,
    extra: str = "",
) -> int:
    head, current = _fixed_messages(conversation, profile, inputs, extra)
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


def turn_prompt_builder(
    conversation: Conversation,
    history: list[tuple[int, str, str]],
    inputs: list[TurnInput],
    *,
    extra: str = "",
):
    def build(candidate: ModelProfile, squeeze: int) -> list[ChatMessage]:
        head, current = _fixed_messages(conversation, candidate, inputs, extra)
        budget = _history_budget(conversation, candidate, inputs, squeeze, extra=extra)
        limit = candidate.history_messages if squeeze < 2 else 0
        kept = _fit(history, budget=budget, limit=limit)
        recent = history[len(history) - kept :] if kept else []
        return head + [ChatMessage(role, text) for _pk, role, text in recent] + current

    return build


def turn_history_compact(
    conversation: Conversation,
    profile: ModelProfile,
    history: list[tuple[int, str, str]],
    inputs: list[TurnInput],
    *,
    extra: str = "",
) -> list[tuple[int, str, str]]:
    """When older turns no longer fit, fold them into Conversation.summary via the model.

    Keeps the newest turns that fit in half the history budget, so compaction
    runs every few turns rather than on each one. Returns the history left.
    """
    budget = _history_budget(conversation, profile, inputs, extra=extra)
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
