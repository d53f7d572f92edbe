"""Feishu's side of an answer: interactive cards, split to fit Feishu's 30 KB limit."""

from __future__ import annotations

import json
from typing import Any

from django.utils.translation import gettext_lazy

# A card may be at most 30 KB of JSON. Characters can take 3 bytes (CJK) plus escaping,
# so pieces are measured in UTF-8 bytes of the escaped text, with room for the buttons.
CARD_TEXT_BYTES = 24_000
ACTION_LABELS = (
    ("helpful", gettext_lazy("👍 Helpful"), "default"),
    ("not_helpful", gettext_lazy("👎 Not helpful"), "default"),
    ("regenerate", gettext_lazy("🔄 Regenerate"), "default"),
)


def _text_bytes(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode())


def card_split(text: str, limit: int = CARD_TEXT_BYTES) -> list[str]:
    """Split an answer into pieces whose card fits Feishu's 30 KB limit.

    Cuts at a paragraph, then a line, then a space when one is in the second half.
    """
    pieces: list[str] = []
    rest = text
    while _text_bytes(rest) > limit:
        # The longest prefix that fits, found by bisection on characters.
        low, high = 1, len(rest)
        while low < high:
            middle = (low + high + 1) // 2
            if _text_bytes(rest[:middle]) <= limit:
                low = middle
            else:
                high = middle - 1
        window = rest[:low]
        cut = low
        for separator in ("\n\n", "\n", " "):
            position = window.rfind(separator)
            if position >= low // 2:
                cut = position
                break
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def answer_card(
    text: str, *, message_id: int, with_actions: bool = False, streaming: bool = False
) -> dict[str, Any]:
    """An interactive card showing `text` as markdown, optionally with feedback buttons.

    update_multi must be true before and after every PATCH of the card.
    """
    elements: list[dict[str, Any]] = [
        {"tag": "markdown", "content": text + (" …" if streaming else "")}
    ]
    if with_actions:
        elements.append(
            {
                "tag": "action",
                "actions": [
                    {
                        "tag": "button",
                        "text": {"tag": "plain_text", "content": str(label)},
                        "type": style,
                        "value": {"action": action, "message_id": str(message_id)},
                    }
                    for action, label, style in ACTION_LABELS
                ],
            }
        )
    return {"config": {"wide_screen_mode": True, "update_multi": True}, "elements": elements}
