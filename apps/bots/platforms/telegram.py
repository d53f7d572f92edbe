"""Telegram, through python-telegram-bot. Telegram's wire format stays in this module."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from telegram import Bot as TelegramBot
from telegram import ReplyParameters, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from apps.bots.platforms.base import (
    DeliveryError,
    InboundMessage,
    OutboundMessage,
    SentMessage,
    WebhookRejected,
)

if TYPE_CHECKING:
    from apps.bots.models import Bot

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_TEXT = 4096


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


class TelegramAdapter:
    """Telegram Bot API: webhook verification and parsing, sending with PTB's Bot."""

    def __init__(self, bot: Bot):
        self.bot = bot

    def verify(self, *, headers: dict[str, str], body: bytes) -> None:
        expected = self.bot.telegram_webhook_secret or ""
        given = headers.get(SECRET_HEADER, "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookRejected("bad or missing secret token", status=403)

    def parse(self, *, body: bytes) -> list[InboundMessage]:
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise WebhookRejected(f"body is not JSON: {error}", status=400) from error
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise WebhookRejected("not a Telegram Update: no integer update_id", status=400)
        try:
            update = Update.de_json(data, None)
        except (KeyError, TypeError, ValueError) as error:
            raise WebhookRejected(f"malformed Update: {error}", status=400) from error
        message = update.message
        if message is None or not message.text or message.chat.type != "private":
            return []
        sender = message.from_user
        return [
            InboundMessage(
                external_id=str(update.update_id),
                chat_id=str(message.chat.id),
                chat_type="private",
                sender_id=str(sender.id) if sender else str(message.chat.id),
                sender_name=sender.full_name if sender else "",
                text=message.text,
                platform_message_id=str(message.message_id),
            )
        ]

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[TelegramBot]:
        # A fresh client per call: PTB's httpx pool binds to the event loop that
        # first uses it, and each Celery task runs its own loop.
        request = HTTPXRequest(connect_timeout=5, read_timeout=15, write_timeout=15)
        updates_request = HTTPXRequest()
        api = self.bot.platform_api_base_url
        client = TelegramBot(
            self.bot.telegram_token,
            base_url=f"{api}/bot",
            base_file_url=f"{api}/file/bot",
            request=request,
            get_updates_request=updates_request,
        )
        try:
            yield client
        finally:
            await asyncio.gather(request.shutdown(), updates_request.shutdown())

    async def _send(self, message: OutboundMessage) -> SentMessage:
        first_id = ""
        async with self._client() as client:
            for index, piece in enumerate(split_text(message.text)):
                reply = None
                if index == 0 and message.reply_to_platform_message_id:
                    reply = ReplyParameters(
                        message_id=int(message.reply_to_platform_message_id),
                        allow_sending_without_reply=True,
                    )
                sent = await client.send_message(
                    chat_id=int(message.chat_id), text=piece, reply_parameters=reply
                )
                first_id = first_id or str(sent.message_id)
        return SentMessage(platform_message_id=first_id)

    def send(self, message: OutboundMessage) -> SentMessage:
        if not message.text.strip():
            raise DeliveryError("empty answer", retryable=False)
        try:
            return asyncio.run(self._send(message))
        except RetryAfter as error:
            retry_after = error.retry_after
            seconds = (
                retry_after.total_seconds()
                if hasattr(retry_after, "total_seconds")
                else retry_after
            )
            raise DeliveryError(str(error), retryable=True, retry_after=float(seconds)) from error
        except (BadRequest, Forbidden) as error:
            raise DeliveryError(f"{error.__class__.__name__}: {error}", retryable=False) from error
        except NetworkError as error:  # includes TimedOut and 5xx answers
            raise DeliveryError(f"{error.__class__.__name__}: {error}", retryable=True) from error
        except TelegramError as error:
            raise DeliveryError(f"{error.__class__.__name__}: {error}", retryable=False) from error

    async def _set_webhook(self, url: str) -> bool:
        async with self._client() as client:
            return await client.set_webhook(
                url=url,
                secret_token=self.bot.telegram_webhook_secret,
                allowed_updates=["message", "edited_message", "callback_query"],
            )

    def set_webhook(self, url: str) -> bool:
        """Register `url` with Telegram, with this bot's secret token."""
        return asyncio.run(self._set_webhook(url))
