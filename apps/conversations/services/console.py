"""The staff console's writes: takeover, hand back, staff replies; exports; web-chat feedback."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from apps.audit.services import audit_record
from apps.bots.platforms.web.adapter import MAX_TEXT
from apps.conversations.choices import Author, Direction, MessageStatus, Rating
from apps.conversations.events import (
    ConversationChanged,
    HandOffEvent,
    MessageEvent,
    message_payload,
    publish,
)
from apps.conversations.models import Conversation, Feedback, Message
from apps.conversations.selectors import conversation_user, export_messages
from apps.conversations.services.actions import answer_regenerate, feedback_record
from apps.conversations.services.dispatch import dispatch_delivery
from apps.core.masking import mask_personal_data


class ConsoleError(Exception):
    """A console action that cannot be done as asked (the message says why)."""


@transaction.atomic
def conversation_take_over(
    *, conversation_id: int, actor, ip_address: str | None = None
) -> Conversation:
    """Stop the AI answering a conversation: `actor` answers it from now on (audited).

    Taking over a conversation someone else holds moves it to `actor`.
    """
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    previous = conversation.handled_by
    if previous is not None and previous.pk == actor.pk:
        return conversation
    conversation.handled_by = actor
    conversation.taken_over_at = timezone.now()
    conversation.save(update_fields=["handled_by", "taken_over_at"])
    audit_record(
        action="conversation.take_over",
        actor=actor,
        target=conversation,
        changes={"handled_by": {"from": previous.get_username() if previous else None}},
        ip_address=ip_address,
    )
    publish(conversation.pk, ConversationChanged())
    return conversation


HAND_OFF_TEXT_LIMIT = 200  # characters of the user's message shown in the notice


@transaction.atomic
def conversation_hand_off(*, conversation_id: int, rule: str = "", text: str = "") -> Conversation:
    """A routing rule hands the conversation to staff: it waits, taken over, for someone.

    The AI stays silent as if staff had taken it over; the console shows it as waiting
    for staff (with nobody holding it) until a staff member takes it or hands it back,
    and staff watching the console are notified at once (`HandOffEvent`: `rule` handed
    it off after the user wrote `text`).
    """
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("bot")
        .get(pk=conversation_id)
    )
    if conversation.handled_by_id is None and conversation.taken_over_at is None:
        conversation.taken_over_at = timezone.now()
        conversation.save(update_fields=["taken_over_at"])
        publish(conversation.pk, ConversationChanged())
        publish(
            conversation.pk,
            HandOffEvent(
                conversation_id=conversation.pk,
                bot=conversation.bot.name,
                user=conversation_user(conversation),
                rule=rule,
                text=text[:HAND_OFF_TEXT_LIMIT],
            ),
        )
    return conversation


@transaction.atomic
def conversation_hand_back(
    *, conversation_id: int, actor, ip_address: str | None = None
) -> Conversation:
    """Let the AI answer a taken-over conversation again (audited).

    Messages that arrived meanwhile stay unanswered by the model: staff saw them.
    """
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    previous = conversation.handled_by
    if previous is None and conversation.taken_over_at is None:  # handed off by a rule: back too
        return conversation
    conversation.handled_by = None
    conversation.taken_over_at = None
    conversation.save(update_fields=["handled_by", "taken_over_at"])
    audit_record(
        action="conversation.hand_back",
        actor=actor,
        target=conversation,
        changes={"handled_by": {"from": previous.get_username() if previous else None}},
        ip_address=ip_address,
    )
    publish(conversation.pk, ConversationChanged())
    return conversation


@transaction.atomic
def staff_reply_send(
    *, conversation_id: int, actor, text: str, ip_address: str | None = None
) -> Message:
    """Record a staff member's reply and deliver it through the platform (audited).

    Only in a conversation that is taken over, so the AI and staff never talk at once.
    """
    text = text.strip()
    if not text:
        raise ConsoleError(gettext("A reply needs some text."))
    if len(text) > MAX_TEXT:
        raise ConsoleError(
            gettext("A reply is at most %(count)d characters.") % {"count": MAX_TEXT}
        )
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    if conversation.handled_by_id is None:
        raise ConsoleError(gettext("Take the conversation over before replying."))
    if conversation.closed_at is not None:
        raise ConsoleError(gettext("This conversation was reset; the user has a new one."))
    now = timezone.now()
    last_inbound = (
        Message.objects.filter(conversation=conversation, direction=Direction.IN)
        .order_by("-id")
        .first()
    )
    message = Message.objects.create(
        conversation=conversation,
        bot_id=conversation.bot_id,
        direction=Direction.OUT,
        author=Author.STAFF,
        sender_id=actor.get_username(),
        text=text,
        status=MessageStatus.ANSWERED,
        reply_to=last_inbound,
        received_at=now,
        model_done_at=now,
    )
    Conversation.objects.filter(pk=conversation.pk).update(last_activity_at=now)
    audit_record(
        action="conversation.staff_reply",
        actor=actor,
        target=conversation,
        changes={"message_id": message.pk, "text": text[:500]},
        ip_address=ip_address,
    )
    publish(conversation.pk, MessageEvent(message_payload(message)))
    dispatch_delivery(message.pk)
    return message


@transaction.atomic
def web_chat_feedback(*, conversation_id: int | None, visitor_id: str, frame: Any) -> Feedback:
    """A web-chat visitor rates an answer in their own conversation."""
    if not isinstance(frame, dict) or frame.get("rating") not in Rating.values:
        raise ConsoleError(gettext("feedback needs a rating: helpful or not_helpful"))
    message = _visitor_answer(conversation_id, visitor_id, frame.get("message_id"))
    feedback = feedback_record(message=message, rating=frame["rating"], platform_user_id=visitor_id)
    publish(message.conversation_id, ConversationChanged())
    return feedback


def web_chat_regenerate(*, conversation_id: int | None, visitor_id: str, frame: Any) -> bool:
    """A web-chat visitor asks for a new answer; False when one is already on its way."""
    message = _visitor_answer(
        conversation_id, visitor_id, frame.get("message_id") if isinstance(frame, dict) else None
    )
    return answer_regenerate(message=message)


def _visitor_answer(conversation_id: int | None, visitor_id: str, message_id: Any) -> Message:
    if not isinstance(message_id, int) or conversation_id is None:
        raise ConsoleError(gettext("a message_id of one of this chat's answers is needed"))
    message = Message.objects.filter(
        pk=message_id,
        conversation_id=conversation_id,
        conversation__chat_id=visitor_id,
        direction=Direction.OUT,
        author=Author.ASSISTANT,
    ).first()
    if message is None:
        raise ConsoleError(gettext("no such answer in this chat"))
    return message


# Exports ------------------------------------------------------------------------

EXPORT_CHUNK = 500
CSV_COLUMNS = [
    "conversation_id",
    "bot",
    "platform",
    "chat_id",
    "user",
    "message_id",
    "received_at",
    "direction",
    "author",
    "sender_id",
    "text",
    "status",
    "error",
    "profile",
    "routing_rule",
    "routing_reason",
    "routing_failure",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "rating",
    "tool_calls",
]


def _export_text(message: Message) -> str:
    """A message's text as exports show it: masked when its bot masks personal data
    (rows stored before the bot did, and staff and model answers, are masked here)."""
    return mask_personal_data(message.text) if message.bot.mask_personal_data else message.text


def _export_tool_calls(message: Message) -> list[dict[str, Any]]:
    """The answer's tool calls as exports show them: what was called with what, and what
    came back (masked like the text)."""
    mask = mask_personal_data if message.bot.mask_personal_data else str
    return [
        {
            "step": call.get("step"),
            "name": call.get("name", ""),
            "arguments": mask(call.get("arguments", "")),
            "result": mask(call.get("result", "")),
            "error": call.get("error", ""),
            "ms": call.get("ms"),
            "id": call.get("id", ""),
        }
        for call in message.tool_calls or []
    ]


def _csv_line(values: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


def conversations_export_csv(*, conversations: QuerySet[Conversation]) -> Iterator[str]:
    """The conversations' messages as CSV lines, read from the database in chunks."""
    yield _csv_line(CSV_COLUMNS)
    for message in export_messages(conversations=conversations).iterator(chunk_size=EXPORT_CHUNK):
        conversation = message.conversation
        yield _csv_line(
            [
                conversation.pk,
                message.bot.name,
                message.bot.platform,
                conversation.chat_id,
                conversation_user(conversation),
                message.pk,
                message.received_at.isoformat(),
                message.direction,
                message.author,
                message.sender_id,
                _export_text(message),
                message.status,
                message.error,
                message.profile.name if message.profile else "",
                message.decision.get("rule", "") if message.decision else "",
                message.decision.get("reason", "") if message.decision else "",
                message.decision.get("failure", "") if message.decision else "",
                message.prompt_tokens if message.prompt_tokens is not None else "",
                message.completion_tokens if message.completion_tokens is not None else "",
                message.cost if message.cost is not None else "",
                getattr(message, "rating", None) or "",  # annotated by export_messages
                json.dumps(_export_tool_calls(message), ensure_ascii=False)
                if message.tool_calls
                else "",
            ]
        )


def _training_role(message: Message) -> str | None:
    if message.direction == Direction.IN:
        return "user" if message.author == Author.USER and message.text else None
    if message.author in (Author.ASSISTANT, Author.STAFF) and message.status in (
        MessageStatus.ANSWERED,
        MessageStatus.DELIVERED,
    ):
        return "assistant"
    return None  # system notices and failed answers are not examples to learn from


def _tool_turns(message: Message) -> list[dict[str, Any]]:
    """The tools an answer called, as the fine-tuning format writes them: per step an
    assistant message with its `tool_calls`, then one `tool` message per result (the
    results as recorded, so shortened ones stay shortened). Calls not run are left out."""
    turns: list[dict[str, Any]] = []
    ran = [call for call in _export_tool_calls(message) if not call["error"].startswith("not run")]
    for _step, grouped in itertools.groupby(ran, key=lambda call: call["step"]):
        calls = list(grouped)
        turns.append(
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": call["arguments"]},
                    }
                    for call in calls
                ],
            }
        )
        turns += [
            {
                "role": "tool",
                "tool_call_id": call["id"],
                "content": f"error: {call['error']}" if call["error"] else call["result"],
            }
            for call in calls
        ]
    return turns


def conversations_export_jsonl(*, conversations: QuerySet[Conversation]) -> Iterator[str]:
    """One line per conversation in the chat fine-tuning format: {"messages": [...]}.

    Answers rated not helpful are left out with the turn they answered; a conversation
    without any answer gives no line. An answer that called tools is preceded by its
    calls and their results (assistant `tool_calls`, then `tool` messages). Messages are
    read in chunks, never all at once.
    """
    messages = export_messages(conversations=conversations).iterator(chunk_size=EXPORT_CHUNK)
    for _, group in itertools.groupby(messages, key=lambda message: message.conversation_id):
        turns: list[dict[str, Any]] = []
        for message in group:
            role = _training_role(message)
            if role is None:
                continue
            # `rating` is annotated by export_messages.
            if role == "assistant" and getattr(message, "rating", None) == Rating.NOT_HELPFUL:
                while turns and turns[-1]["role"] == "user":
                    turns.pop()
                continue
            if role == "assistant" and message.tool_calls:
                turns += _tool_turns(message)
            if turns and turns[-1]["role"] == role and "content" in turns[-1]:
                turns[-1]["content"] += "\n\n" + _export_text(message)  # one turn
            else:
                turns.append({"role": role, "content": _export_text(message)})
        while turns and turns[-1]["role"] == "user":
            turns.pop()
        if any(turn["role"] == "assistant" for turn in turns):
            yield json.dumps({"messages": turns}, ensure_ascii=False) + "\n"
