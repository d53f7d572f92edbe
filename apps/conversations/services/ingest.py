"""Taking in users' messages: dedup, policy, store, schedule the turn."""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.functional import Promise, lazy
from django.utils.text import format_lazy
from django.utils.translation import gettext, gettext_lazy

from apps.bots.choices import Platform, WhileAnswering
from apps.bots.models import Bot
from apps.bots.platforms.base import InboundMessage
from apps.bots.platforms.web.adapter import WebChatAdapter
from apps.bots.services import access_check, inbound_accept
from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.events import MessageEvent, message_payload, publish
from apps.conversations.models import Conversation, Message, MessageAttachment
from apps.conversations.services.delivery import reply_system
from apps.conversations.services.dispatch import dispatch_interrupt, dispatch_turn
from apps.core.logs import log_context
from apps.core.masking import mask_personal_data
from apps.core.metrics import message_ingested_record
from apps.core.sql import row_insert, rows_update, rows_where
from apps.guard.services import FloodDecision, ingest_flood_check
from apps.routing.engine import staff_decision

logger = logging.getLogger(__name__)

# Fixed replies are lazy: reply_system puts them in the language the bot replies in.
HELP_TEXT = gettext_lazy(
    "Hi! Just write to me and I will answer.\n"
    "/reset starts a new conversation (I forget what we said).\n"
    "/model tells which model answers.\n"
    "/help shows this message."
)
RESET_REPLY = gettext_lazy("Started a new conversation. What can I do for you?")


def conversation_open(*, bot: Bot, inbound: InboundMessage) -> Conversation:
    """The chat's open conversation, created on its first message (or after /reset).

    Every webhook runs this, so it is plain SQL (apps.core.sql): one SELECT, then
    an INSERT for a new chat or an UPDATE of who wrote and when for a known one.
    """
    now = timezone.now()
    where = {"bot": bot.pk, "chat_id": inbound.chat_id, "closed_at": None}
    found = rows_where(Conversation, where, limit=1)
    if not found:
        conversation = Conversation(
            bot=bot,
            chat_id=inbound.chat_id,
            chat_type=inbound.chat_type,
            participants={inbound.sender_id: inbound.sender_name},
            started_at=now,
            last_activity_at=now,
        )
        try:
            # Inside a caller's transaction a lost race may only roll back a savepoint.
            in_atomic = transaction.get_connection().in_atomic_block
            with transaction.atomic() if in_atomic else contextlib.nullcontext():
                return row_insert(conversation)
        except IntegrityError:
            # The chat's first messages arrived together: another one opened it.
            found = rows_where(Conversation, where, limit=1)
            if not found:
                raise
    conversation = found[0]
    conversation.bot = bot
    participants = dict(conversation.participants)
    # A name the platform left out may have been learned since (participant_name_learn).
    participants[inbound.sender_id] = inbound.sender_name or participants.get(inbound.sender_id, "")
    conversation.participants = participants
    conversation.last_activity_at = now
    rows_update(
        Conversation, [conversation.pk], {"participants": participants, "last_activity_at": now}
    )
    return conversation


def message_ingest(*, bot: Bot, inbound: InboundMessage) -> Message | None:
    """Store an inbound message and schedule its answer; None if not stored.

    Not stored: a repeated delivery (platforms deliver at least once; the
    (bot, external_id) constraint makes it a no-op) or a group message that is
    not addressed to the bot under its group trigger.

    The webhook waits for this, so it costs few round trips: no transaction
    around the whole (the message row is the one write that matters, and it is
    inserted whole; its attachments go in with it in one transaction).
    """
    # Repeated deliveries are refused by the (bot, external_id) constraint on insert,
    # without a query first; nothing that matters happens before the insert.
    accepted = inbound_accept(bot=bot, inbound=inbound)
    if accepted is None:
        return None
    # Before the insert, so the row is written once with its final status (one Redis call).
    flood = ingest_flood_check(bot_id=bot.pk, user_id=accepted.sender_id)
    conversation = conversation_open(bot=bot, inbound=accepted)
    message = Message(
        conversation=conversation,
        bot=bot,
        direction=Direction.IN,
        author=Author.USER,
        sender_id=accepted.sender_id,
        # Masked before the row is written when the bot asks for it: never stored raw.
        text=mask_personal_data(accepted.text) if bot.mask_personal_data else accepted.text,
        external_id=accepted.external_id,
        platform_message_id=accepted.platform_message_id,
        status=MessageStatus.RECEIVED if flood.allowed else MessageStatus.SKIPPED,
        error="" if flood.allowed else "rate limited",
    )
    # One INSERT on its own needs no transaction; with attachments (or inside a caller's
    # transaction, where a duplicate must only roll back a savepoint) it gets one.
    atomic = bool(accepted.attachments) or transaction.get_connection().in_atomic_block
    try:
        with transaction.atomic() if atomic else contextlib.nullcontext():
            row_insert(message)
            MessageAttachment.objects.bulk_create(
                MessageAttachment(
                    message=message,
                    kind=attachment.kind,
                    platform_file_id=attachment.platform_file_id,
                    mime_type=attachment.mime_type,
                    file_name=attachment.file_name,
                    size=attachment.size,
                )
                for attachment in accepted.attachments
            )
    except IntegrityError:
        return None  # a concurrent delivery of the same event won the race
    message_ingested_record(platform=bot.platform)
    with (
        log_context(bot=bot.pk, conversation=conversation.pk, message=message.pk),
        transaction.atomic(),
    ):
        _message_stored(bot, conversation, message, accepted, flood)
    return message


def _message_stored(
    bot: Bot,
    conversation: Conversation,
    message: Message,
    accepted: InboundMessage,
    flood: FloodDecision,
) -> None:
    """Tell watchers, then answer: a flood notice, a fixed reply, a command, staff, or a turn."""
    publish(conversation.pk, MessageEvent(message_payload(message)))

    if not flood.allowed:
        if flood.notice:  # once per notice interval: the notice must not flood either
            logger.info("rate limited the sender of message %s (%s limit)", message.pk, flood.limit)
            reply_system(conversation=conversation, text=flood_notice(flood), reply_to=message)
        return
    refusal = access_check(bot=bot, inbound=accepted)
    if refusal is not None:
        _answer_fixed(message, refusal, status=MessageStatus.SKIPPED, note="access denied")
    elif accepted.command:
        _answer_command(bot, conversation, message, accepted.command)
    elif (staff := staff_decision(conversation)) is not None:
        # The routing engine's own decision (no query): no turn is started for it.
        message.decision = staff.record()
        _answer_fixed(
            message, None, status=MessageStatus.SKIPPED, note="staff took over", routed=True
        )
    elif accepted.unsupported:
        _answer_fixed(
            message,
            lazy(unsupported_notice, str)(accepted.unsupported),
            status=MessageStatus.ANSWERED,
            note=f"cannot use {accepted.unsupported} yet",
        )
    else:
        dispatch_turn(conversation.pk)
        if bot.while_answering == WhileAnswering.INTERRUPT:
            dispatch_interrupt(conversation.pk)


FLOOD_NOTICE_USER = gettext_lazy(
    "You are sending messages faster than I can answer, so I skipped the last ones. "
    "Please wait about {seconds} seconds, then send your question again."
)
FLOOD_NOTICE_BOT = gettext_lazy(
    "I am receiving too many messages right now and skipped yours. "
    "Please send it again in about {seconds} seconds."
)


def flood_notice(flood: FloodDecision) -> Promise:
    """The rate-limited notice, lazy: put in the bot's reply language when it is sent."""
    notice = FLOOD_NOTICE_USER if flood.limit == "user" else FLOOD_NOTICE_BOT
    return format_lazy(notice, seconds=math.ceil(flood.retry_after))


UNSUPPORTED_NAMES = {
    "sticker": gettext_lazy("stickers"),
    "video": gettext_lazy("videos"),
    "video_note": gettext_lazy("video messages"),
    "animation": gettext_lazy("GIFs"),
    "audio": gettext_lazy("music or audio files"),
    "dice": gettext_lazy("dice"),
    "game": gettext_lazy("games"),
    "story": gettext_lazy("stories"),
    "merge_forward": gettext_lazy("forwarded message bundles"),
    "interactive": gettext_lazy("cards"),
}


def unsupported_notice(kind: str) -> str:
    """The short reply to a message whose content the bot cannot use yet."""
    what = UNSUPPORTED_NAMES.get(kind, gettext("this kind of message"))
    return gettext(
        "Sorry, I can't use %(what)s yet. Please write your question as text, "
        "or send a photo, a voice message or a file."
    ) % {"what": what}


def _answer_fixed(
    message: Message,
    text: str | Promise | None,
    *,
    status: str,
    note: str,
    routed: bool = False,
) -> None:
    message.status = status
    message.error = note
    message.save(update_fields=["status", "error", *(["decision"] if routed else [])])
    publish(message.conversation_id, MessageEvent(message_payload(message)))
    if text:
        reply_system(conversation=message.conversation, text=text, reply_to=message)


def _answer_command(bot: Bot, conversation: Conversation, message: Message, command: str) -> None:
    text: str | Promise
    if command in ("start", "help"):
        text = HELP_TEXT
    elif command == "reset":
        conversation.closed_at = timezone.now()
        conversation.save(update_fields=["closed_at"])
        text = RESET_REPLY
    else:
        text = lazy(_command_reply, str)(bot, command)
    _answer_fixed(message, text, status=MessageStatus.ANSWERED, note="")


def _command_reply(bot: Bot, command: str) -> str:
    if command == "model":
        if bot.profile is None:
            return gettext("No model is configured for this bot yet.")
        return gettext("Answers come from the profile “%(profile)s” (model %(model)s).") % {
            "profile": bot.profile.name,
            "model": bot.profile.model,
        }
    return gettext("Unknown command /%(command)s. Try /help.") % {"command": command}


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
    conversation = Conversation.objects.filter(
        bot=bot, chat_id=visitor_id, closed_at__isnull=True
    ).first()
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
    conversation = conversation_open(bot=chat.bot, inbound=inbound)
    chat.conversation_id = conversation.pk
    return conversation.pk
