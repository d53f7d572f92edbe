"""Telegram's side of an answer: model text as Telegram HTML, split to fit, and buttons."""

from __future__ import annotations

import html
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from apps.bots.platforms.base import OutboundMessage

MAX_TEXT = 4096
# Button presses carry "a:<action>:<our Message id>" (Telegram allows 64 bytes).
ACTION_BUTTONS = (("helpful", "👍 Helpful"), ("not_helpful", "👎 Not helpful"))
REGENERATE = ("regenerate", "🔄 Regenerate")


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split at paragraph, then line, then word boundaries so each piece fits `limit`."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces


# Formatting ----------------------------------------------------------------------------

_FENCE = re.compile(r"(```[^\n`]*\n[\s\S]*?```)")
_INLINE_CODE = re.compile(r"(`[^`\n]+`)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")


def to_html(text: str) -> str:
    """Model text as Telegram HTML: everything escaped; ``` fences, `code` and **bold** kept.

    Only balanced markup is converted, so the result always parses.
    """
    out: list[str] = []
    for part in _FENCE.split(text):
        if _FENCE.fullmatch(part):
            code = part[3:-3].split("\n", 1)[1]
            out.append(f"<pre>{html.escape(code, quote=False)}</pre>")
            continue
        for piece in _INLINE_CODE.split(part):
            if _INLINE_CODE.fullmatch(piece):
                out.append(f"<code>{html.escape(piece[1:-1], quote=False)}</code>")
            else:
                out.append(_BOLD.sub(r"<b>\1</b>", html.escape(piece, quote=False)))
    return "".join(out)


def keyboard(message: OutboundMessage) -> InlineKeyboardMarkup | None:
    if not message.with_actions:
        return None

    def button(action: str, label: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(label, callback_data=f"a:{action}:{message.message_id}")

    return InlineKeyboardMarkup([[button(*spec) for spec in ACTION_BUTTONS], [button(*REGENERATE)]])
