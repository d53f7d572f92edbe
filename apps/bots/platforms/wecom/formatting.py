"""WeCom's side of an answer: text messages of at most 2048 bytes (发送应用消息)."""

from __future__ import annotations

MAX_TEXT_BYTES = 2048


def text_split(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """Split at a paragraph, a line, then a space, so each piece fits `limit` UTF-8 bytes."""
    pieces: list[str] = []
    rest = text
    while len(rest.encode()) > limit:
        window = rest.encode()[:limit].decode("utf-8", "ignore")
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < len(window) // 2:
            cut = len(window)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces
