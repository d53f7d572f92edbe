"""Feishu events as Feishu sends them: schema 2.0 envelopes, optionally encrypted and signed.

Encryption is the documented scheme (AES-256-CBC, key sha256(Encrypt Key), random IV
prepended, PKCS7, base64); `encrypt()` output is checked against lark-oapi's own
AESCipher in the tests, and the adapter decrypts with that same cipher.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import time
import uuid
from typing import Any

import pytest
from Crypto.Cipher import AES

from apps.bots.choices import Platform
from apps.bots.platforms.feishu.parsing import event_signature
from apps.bots.services import bot_create
from tests.fakes.feishu import FakeFeishu

_event_numbers = itertools.count(1)
_message_numbers = itertools.count(1)

USER_OPEN_ID = "ou_user_ada"


def encrypt(plaintext: str, encrypt_key: str) -> str:
    """Encrypt like Feishu: base64(iv + AES-256-CBC(sha256(key), PKCS7(plaintext)))."""
    key = hashlib.sha256(encrypt_key.encode()).digest()
    iv = os.urandom(16)
    data = plaintext.encode()
    pad = 16 - len(data) % 16
    cipher = AES.new(key, AES.MODE_CBC, iv)
    return base64.b64encode(iv + cipher.encrypt(data + bytes([pad]) * pad)).decode()


def envelope(
    event_type: str, event: dict[str, Any], *, token: str, event_id: str | None = None
) -> dict:
    return {
        "schema": "2.0",
        "header": {
            "event_id": event_id or f"ev_{next(_event_numbers):08d}_{os.urandom(4).hex()}",
            "token": token,
            "create_time": str(int(time.time() * 1000)),
            "event_type": event_type,
            "tenant_key": "tenant_fake",
            "app_id": "cli_fake",
        },
        "event": event,
    }


def message_event(
    *,
    token: str,
    message_type: str = "text",
    content: dict[str, Any] | None = None,
    text: str = "hello",
    chat_type: str = "p2p",
    chat_id: str = "oc_chat_1",
    mentions: list[dict[str, Any]] | None = None,
    sender_open_id: str = USER_OPEN_ID,
    event_id: str | None = None,
    message_id: str | None = None,
) -> dict:
    """An im.message.receive_v1 event; `content` defaults to {"text": text}."""
    message = {
        "message_id": message_id or f"om_user_{next(_message_numbers)}_{os.urandom(3).hex()}",
        "root_id": "",
        "parent_id": "",
        "create_time": str(int(time.time() * 1000)),
        "chat_id": chat_id,
        "chat_type": chat_type,
        "message_type": message_type,
        "content": json.dumps(content if content is not None else {"text": text}),
    }
    if mentions:
        message["mentions"] = mentions
    return envelope(
        "im.message.receive_v1",
        {
            "sender": {
                "sender_id": {"open_id": sender_open_id, "union_id": "on_x", "user_id": "u_x"},
                "sender_type": "user",
                "tenant_key": "tenant_fake",
            },
            "message": message,
        },
        token=token,
        event_id=event_id,
    )


def mention(key: str, open_id: str, name: str) -> dict:
    return {
        "key": key,
        "id": {"open_id": open_id, "union_id": "on_m", "user_id": "u_m"},
        "name": name,
        "tenant_key": "tenant_fake",
    }


def card_action_event(
    *,
    token: str,
    action: str,
    message_id: int,
    chat_id: str = "oc_chat_1",
    event_id: str | None = None,
) -> dict:
    """A card.action.trigger callback for one of our answer buttons."""
    return envelope(
        "card.action.trigger",
        {
            "operator": {"tenant_key": "tenant_fake", "open_id": USER_OPEN_ID, "user_id": "u_x"},
            "token": "c-card-token",
            "action": {"tag": "button", "value": {"action": action, "message_id": str(message_id)}},
            "host": "im_message",
            "context": {"open_message_id": "om_fake_1", "open_chat_id": chat_id},
        },
        token=token,
        event_id=event_id,
    )


def url_verification(*, token: str, challenge: str = "challenge-abc") -> dict:
    return {"challenge": challenge, "token": token, "type": "url_verification"}


def signed_headers(body: bytes, encrypt_key: str, *, timestamp: int | None = None) -> dict:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = os.urandom(8).hex()
    return {
        "X-Lark-Request-Timestamp": stamp,
        "X-Lark-Request-Nonce": nonce,
        "X-Lark-Signature": event_signature(
            timestamp=stamp, nonce=nonce, encrypt_key=encrypt_key, body=body
        ),
    }


def post_event(
    client, bot, payload: dict, *, encrypt_key: str | None = None, headers=None, raw=None
):
    """POST an event to the bot's webhook as Feishu does (encrypted and signed when keyed)."""
    key = bot.config.get("encrypt_key", "") if encrypt_key is None else encrypt_key
    body = raw
    if body is None:
        plain = json.dumps(payload)
        body = json.dumps({"encrypt": encrypt(plain, key)}).encode() if key else plain.encode()
    if headers is None:
        headers = signed_headers(body, key) if key else {}
    return client.post(
        f"/api/webhooks/feishu/{bot.pk}/",
        data=body,
        content_type="application/json",
        headers=headers,
    )


# Fixtures (imported by the Feishu test modules) -----------------------------------------

ENCRYPT_KEY = "test-encrypt-key-0123456789"
VERIFICATION_TOKEN = "test-verification-token"
BOT_OPEN_ID = "ou_bot_0001"


@pytest.fixture
def fake_feishu():
    # A fresh app id per test: tokens are cached in Redis under the app id.
    server = FakeFeishu(
        app_id=f"cli_{uuid.uuid4().hex[:16]}", app_secret="app-secret", bot_open_id=BOT_OPEN_ID
    ).start()
    yield server
    server.stop()


@pytest.fixture
def feishu_bot(profile, fake_feishu):
    """A Feishu bot with an Encrypt Key (events encrypted and signed) talking to the fake."""
    return bot_create(
        name=f"feishu-{uuid.uuid4().hex[:6]}",
        platform=Platform.FEISHU,
        profile=profile,
        api_base_url=fake_feishu.url,
        config={
            "app_id": fake_feishu.app_id,
            "app_secret": fake_feishu.app_secret,
            "verification_token": VERIFICATION_TOKEN,
            "encrypt_key": ENCRYPT_KEY,
        },
        platform_username=BOT_OPEN_ID,
    )


@pytest.fixture
def plain_feishu_bot(feishu_bot):
    """The same bot without an Encrypt Key: plaintext events, verification token only."""
    del feishu_bot.config["encrypt_key"]
    feishu_bot.save(update_fields=["config"])
    return feishu_bot
