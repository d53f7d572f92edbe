"""Reading Feishu events: decryption, the signature, and the shapes of message content."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from lark_oapi.core.utils import AESCipher

from apps.bots.platforms.base import EventNotUnderstood, WebhookRejected

SIGNATURE_HEADER = "X-Lark-Signature"
TIMESTAMP_HEADER = "X-Lark-Request-Timestamp"
NONCE_HEADER = "X-Lark-Request-Nonce"
# Replay protection: Feishu does not bound the timestamp; we accept 5 minutes either way.
SIGNATURE_MAX_AGE = 300
COMMANDS = {"start", "help", "reset", "model"}
MENTION_KEY = re.compile(r"(@_user_\d+)( ?)")


def event_decrypt(body: bytes, encrypt_key: str) -> dict[str, Any]:
    """The JSON of a webhook body, decrypted when it is {"encrypt": ...}. Raises WebhookRejected."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise WebhookRejected(f"body is not JSON: {error}", status=400) from error
    if not isinstance(data, dict):
        raise WebhookRejected("body is not a JSON object", status=400)
    encrypted = data.get("encrypt")
    if encrypted is None:
        return data
    if not encrypt_key:
        raise WebhookRejected("encrypted event but no Encrypt Key is configured", status=403)
    if not isinstance(encrypted, str):
        raise WebhookRejected("encrypt is not a string", status=400)
    try:
        plain = json.loads(AESCipher(encrypt_key).decrypt_str(encrypted))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:  # base64/padding/JSON
        raise WebhookRejected(f"cannot decrypt the event: {error}", status=400) from error
    if not isinstance(plain, dict):
        raise WebhookRejected("decrypted event is not a JSON object", status=400)
    return plain


def _get(data: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return default
        data = data.get(key)
    return default if data is None else data


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _id(value: Any, what: str, limit: int = 128) -> str:
    """A required id that fits our columns; anything else is a malformed event (400)."""
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise EventNotUnderstood(f"missing or malformed {what}")
    return value


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _content(message: dict[str, Any]) -> dict[str, Any]:
    raw = message.get("content") or "{}"
    try:
        content = json.loads(raw) if isinstance(raw, str) else raw
    except (json.JSONDecodeError, RecursionError) as error:
        raise EventNotUnderstood(f"message content is not readable JSON: {error}") from error
    if not isinstance(content, dict):
        raise EventNotUnderstood("message content is not a JSON object")
    return content


def _post_body(content: dict[str, Any]) -> dict[str, Any]:
    """A post's {"title", "content"}; events carry it bare, the API language-keyed."""
    if isinstance(content.get("content"), list):
        return content
    for value in content.values():
        if isinstance(value, dict) and isinstance(value.get("content"), list):
            return value
    return {}


SENDER_ID_KINDS = ("open_id", "union_id", "user_id")


def _post_at_ids(post: dict[str, Any]) -> set[str]:
    """The user ids of the @ elements in a post's paragraphs."""
    return {
        _str(element.get("user_id"))
        for paragraph in _list(post.get("content"))
        for element in _list(paragraph)
        if isinstance(element, dict) and element.get("tag") == "at"
    } - {""}


def _other_content(kind: Any, content: dict[str, Any]) -> tuple[str, str]:
    """A message that is neither text, post, image nor file: (its text, unsupported kind).

    A place, a shared chat or user is described for the model; anything else (stickers,
    forwarded bundles, cards, ...) is described for the record and named as unsupported.
    """
    if kind == "location":
        name = _str(content.get("name"))
        where = f"({_str(content.get('latitude'))}, {_str(content.get('longitude'))})"
        return f"📍 {name} {where}".replace("  ", " "), ""
    if kind == "share_chat":
        return f"[shared group chat {_str(content.get('chat_id'))}]", ""
    if kind == "share_user":
        return f"[shared contact {_str(content.get('user_id'))}]", ""
    if not isinstance(kind, str) or not kind:
        return "", ""
    return f"[{kind.replace('_', ' ')}]", kind


def event_signature(*, timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """X-Lark-Signature: sha256 hex of timestamp + nonce + encrypt key + the raw body."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()
