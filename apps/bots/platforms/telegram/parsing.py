"""Reading Telegram Updates: ids, the defaults PTB needs, and content beyond text."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from apps.bots.platforms.base import EventNotUnderstood

if TYPE_CHECKING:
    from telegram import Message as TelegramMessage

COMMANDS = {
    "start": "Start chatting",
    "help": "What I can do",
    "reset": "Start a new conversation",
    "model": "Which model answers",
}
CALLBACK_DATA = re.compile(r"^a:(?P<action>[a-z_]+):(?P<message_id>\d+)$")


def utf16_replace(text: str, spans: list[tuple[int, int]], marker: str) -> str:
    """`text` with each (offset, length) span, counted in UTF-16 code units, replaced."""
    encoded = text.encode("utf-16-le")
    replacement = marker.encode("utf-16-le")
    for offset, length in sorted(spans, reverse=True):
        encoded = encoded[: offset * 2] + replacement + encoded[(offset + length) * 2 :]
    return encoded.decode("utf-16-le")


def telegram_id(value: Any, what: str, *, signed: bool = False) -> int:
    """A Bot API id: an integer that fits 64 bits (chat ids may be negative)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventNotUnderstood(f"{what} is not an integer")
    if not (-(2**63) < value < 2**63 if signed else 0 <= value < 2**63):
        raise EventNotUnderstood(f"{what} is out of range")
    return value


# Objects whose fields Telegram documents as required but that payloads seen in the wild
# (proxies, older Bot API servers, other projects' fixtures) sometimes omit.
_USER_KEYS = {
    "from",
    "user",
    "forward_from",
    "via_bot",
    "new_chat_member",
    "left_chat_member",
    "sender_business_bot",
}


# Fields later Bot API versions made required, with what an older payload meant by leaving
# them out (Bot API 2.0 added chat.type, 4.8 dice.emoji, 5.x sticker.type and is_video).
_MEDIA_DEFAULTS: dict[str, dict[str, Any]] = {
    "sticker": {"is_animated": False, "is_video": False, "type": "regular"},
    "dice": {"emoji": "🎲"},  # the only dice before Bot API 4.8
    "animation": {"width": 0, "height": 0, "duration": 0},
    "video": {"width": 0, "height": 0, "duration": 0},
    "video_note": {"length": 0, "duration": 0},
    "audio": {"duration": 0},
    "voice": {"duration": 0},
    "callback_query": {"chat_instance": ""},
}
_CHAT_KEYS = {"chat", "sender_chat", "forward_from_chat"}


def _old_api_defaults(key: str, value: dict[str, Any]) -> None:
    """Fill in, on one object of an update, what payloads from older Bot APIs omit."""
    for name, default in _MEDIA_DEFAULTS.get(key, {}).items():
        value.setdefault(name, default)
    if key in _CHAT_KEYS and "type" not in value and isinstance(value.get("id"), int):
        # Only groups had negative ids before chat types existed.
        value["type"] = "private" if value["id"] > 0 else "group"


def with_defaults(update: dict[str, Any]) -> dict[str, Any]:
    """The update with harmless defaults for fields PTB requires and payloads omit.

    A user without `is_bot` is taken as a person, without `first_name` as nameless; a
    file without `file_unique_id` uses its `file_id`; a poll option from before Bot API
    9.6 gets its text as `persistent_id`; chats (a chat without `type`, as in Telegram's
    own webhook-testing examples, is private when its id is positive, else a group),
    stickers, dice and media from older Bot APIs get what those versions meant
    (`_old_api_defaults`). Walks iteratively: a payload nested thousands deep cannot
    exhaust the stack.
    """
    stack: list[tuple[str, Any]] = [("", update)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, list):
            stack.extend((key, item) for item in value)
        elif isinstance(value, dict):
            if key in _USER_KEYS or key == "new_chat_members":
                value.setdefault("is_bot", False)
                value.setdefault("first_name", "")
            if "file_id" in value:
                value.setdefault("file_unique_id", value["file_id"])
            if key == "options" and "voter_count" in value:  # poll options before API 9.6
                value.setdefault("persistent_id", str(value.get("text", "")))
            if key == "poll":  # fields PTB requires since Bot API 9.6 / 10.0
                value.setdefault("allows_revoting", False)
                value.setdefault("members_only", False)
            if key == "poll_answer":
                value.setdefault("option_persistent_ids", [])
            _old_api_defaults(key, value)
            stack.extend(value.items())
    return update


# Kinds of message the bot cannot use yet: answered with a notice, never dropped.
UNSUPPORTED_KINDS = ("audio", "dice", "game", "story")
# Videos the model is shown as key frames and, when it can, told the words of their sound.
VIDEO_KINDS = ("video", "video_note", "animation")


def other_content(message: TelegramMessage) -> tuple[str, str]:
    """Content beyond text and files: (its description, the unsupported kind or "").

    A place, a contact or a poll is described in text the model can use; anything else
    is described for the record and named as unsupported.
    """
    if message.venue:
        venue, where = message.venue, message.venue.location
        return f"📍 {venue.title}, {venue.address} ({where.latitude}, {where.longitude})", ""
    if message.location:
        return f"📍 ({message.location.latitude}, {message.location.longitude})", ""
    if message.contact:
        contact = message.contact
        name = " ".join(filter(None, [contact.first_name, contact.last_name]))
        return "👤 " + ", ".join(filter(None, [name, contact.phone_number])), ""
    if message.poll:
        options = " / ".join(option.text for option in message.poll.options)
        return f"📊 {message.poll.question} — {options}", ""
    if message.sticker:
        return f"[sticker {message.sticker.emoji or ''}]".replace(" ]", "]"), "sticker"
    for kind in UNSUPPORTED_KINDS:
        if getattr(message, kind, None):
            return f"[{kind.replace('_', ' ')}]", kind
    return "", ""
