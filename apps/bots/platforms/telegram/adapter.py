"""Telegram, through python-telegram-bot: the adapter (verify, parse, send, stream, set-up)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

import redis
from telegram import Bot as TelegramBot
from telegram import (
    BotCommand,
    InlineKeyboardMarkup,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest

from apps.bots.platforms.base import (
    NOT_SHOWN_NOTE,
    ChatMoved,
    DeliveryError,
    EventNotUnderstood,
    IdentityLearned,
    InboundAction,
    InboundAttachment,
    InboundItem,
    InboundMessage,
    OutboundMessage,
    SentMessage,
    WebhookRejected,
    answer_shown_key,
)
from apps.bots.platforms.telegram.formatting import keyboard, split_text, to_html
from apps.bots.platforms.telegram.pacing import (
    PACE_MAX_WAIT_SECONDS,
    PACE_STREAM_TOLERANCE_SECONDS,
    ChatPacer,
)
from apps.bots.platforms.telegram.parsing import (
    CALLBACK_DATA,
    COMMANDS,
    VIDEO_KINDS,
    other_content,
    telegram_id,
    utf16_replace,
    with_defaults,
)
from apps.bots.platforms.telegram.transport import AiohttpRequest
from apps.core.aio import process_loop
from apps.core.redis import as_text, get_async_redis

if TYPE_CHECKING:
    from telegram import Message as TelegramMessage

    from apps.bots.models import Bot

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]


def _seconds(value: Any) -> float:
    return float(value.total_seconds() if hasattr(value, "total_seconds") else value)


# "typing…" lasts about 5 s: the turn repeats it this often while the model has not answered.
TYPING_EVERY_SECONDS = 4.0
# Connections to the Bot API kept open per bot, shared by every turn of a worker process
# (aiohttp, transport.py; requests beyond them wait in the connector's queue).
CONNECTION_POOL_SIZE = 32
POOL_TIMEOUT_SECONDS = 30.0


# The adapter ---------------------------------------------------------------------------


# Long-lived PTB clients on the process loop, one per bot token and API server.
_shared_clients: dict[tuple[uuid.UUID, str, str], TelegramBot] = {}


async def _close_shared_clients() -> None:
    clients = list(_shared_clients.values())
    _shared_clients.clear()
    for client in clients:
        await client.request.shutdown()  # the sending pool (Bot.shutdown() skips a
        # client that was never initialize()d)


process_loop.at_exit(_close_shared_clients)


class TelegramAdapter:
    """Telegram Bot API: webhook verification and parsing, sending with PTB's Bot.

    Sending is asynchronous (`asend`, `astream_update`, `atyping`, `adownload`) and runs
    on the process loop with one long-lived client per bot; the synchronous methods
    run the same coroutines there and wait.
    """

    stream_interval: float | None = 1.0
    typing_every: float | None = TYPING_EVERY_SECONDS
    download_limit_bytes = 20 * 1024 * 1024  # the Bot API's getFile limit

    def __init__(self, bot: Bot):
        self.bot = bot
        self._learned_username = ""  # from getMe during this parse; reported, not stored

    @property
    def telegram_bot_id(self) -> int | None:
        """The bot's own user id: the part of its token before the colon."""
        head = (self.bot.config.get("token", "") or "").split(":", 1)[0]
        return int(head) if head.isdigit() else None

    def verify(self, *, headers: dict[str, str], body: bytes, query=None) -> None:
        expected = self.bot.config.get("webhook_secret", "") or ""
        given = headers.get(SECRET_HEADER, "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookRejected("bad or missing secret token", status=403)

    # Inbound ---------------------------------------------------------------------------

    def parse(self, *, body: bytes) -> list[InboundItem]:
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise WebhookRejected(f"body is not JSON we can read: {error}", status=400) from error
        if not isinstance(data, dict):
            raise EventNotUnderstood("not a Telegram Update: not a JSON object")
        telegram_id(data.get("update_id"), "update_id")
        try:
            update = Update.de_json(with_defaults(data), None)
        except Exception as error:  # noqa: BLE001 - PTB raises whatever a bad shape triggers
            raise EventNotUnderstood(
                f"malformed Update: {error.__class__.__name__}: {error}"
            ) from error
        items = self.parse_update(update)
        if self._learned_username:
            items.append(IdentityLearned(username=self._learned_username))
        return items

    def parse_update(self, update: Update) -> list[InboundItem]:
        """What one Update carries for us (webhook and long polling share this)."""
        if update.callback_query is not None:
            action = self._parse_callback(update)
            return [action] if action else []
        message = update.message or update.edited_message
        if message is None:
            return []
        if message.chat is None:
            raise EventNotUnderstood("malformed Update: a message without a chat")
        if message.migrate_to_chat_id:
            return [
                ChatMoved(
                    old_chat_id=str(message.chat.id), new_chat_id=str(message.migrate_to_chat_id)
                )
            ]
        if message.chat.type not in ("private", "group", "supergroup"):
            return []
        telegram_id(message.chat.id, "chat.id", signed=True)
        telegram_id(message.message_id, "message_id")
        if message.from_user is not None:
            telegram_id(message.from_user.id, "from.id")
        inbound = self._parse_message(message, edited=update.edited_message is not None)
        if inbound is None:
            return []
        return [
            InboundMessage(
                external_id=str(update.update_id),
                chat_id=str(message.chat.id),
                chat_type="private" if message.chat.type == "private" else "group",
                sender_id=str(message.from_user.id) if message.from_user else str(message.chat.id),
                sender_name=message.from_user.full_name if message.from_user else "",
                platform_message_id=str(message.message_id),
                **inbound,
            )
        ]

    def _parse_message(self, message: TelegramMessage, *, edited: bool) -> dict | None:
        text = message.text or message.caption or ""
        if not isinstance(text, str):
            raise EventNotUnderstood(f"the message text is a {type(text).__name__}, not text")
        raw_entities = message.entities if message.text else message.caption_entities
        entities = (
            message.parse_entities()
            if message.text
            else message.parse_caption_entities()
            if message.caption
            else {}
        )
        mentioned = False
        command = ""
        spans: list[tuple[int, int]] = []
        for entity in raw_entities or ():
            value = entities.get(entity, "")
            if entity.type == MessageEntity.MENTION and self._is_me(value):
                mentioned = True
                spans.append((entity.offset, entity.length))
            elif entity.type == MessageEntity.TEXT_MENTION and entity.user:
                if entity.user.id == self.telegram_bot_id:
                    mentioned = True
                    spans.append((entity.offset, entity.length))
            elif entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
                name, _, addressee = value[1:].partition("@")
                if addressee and not self._is_me("@" + addressee):
                    return None  # a command for another bot in the group
                if name.lower() in COMMANDS:
                    command = name.lower()
                    spans.append((entity.offset, entity.length))
                elif addressee:
                    mentioned = True  # "/ask@ThisBot question": addressed to us
                    spans.append((entity.offset, entity.length))
        reply = message.reply_to_message
        reply_to_bot = bool(
            reply
            and reply.from_user
            and self.telegram_bot_id is not None
            and reply.from_user.id == self.telegram_bot_id
        )
        attachments = self._attachments(message)
        described, unsupported = other_content(message)
        if not text and not attachments and not described:
            return None
        if spans:
            # Only the gap a removed mention leaves is tidied; the rest stays as written.
            text = re.sub(r"[ \t]*\x00[ \t]*", " ", utf16_replace(text, spans, "\x00"))
            text = text.strip(" \t,:，：")
        text = text.strip()
        if unsupported and (text or attachments):
            # The rest is answered; the model knows what it was not shown.
            what = unsupported.replace("_", " ")
            text = f"{text}\n{NOT_SHOWN_NOTE.format(what=what)}".strip()
            unsupported = ""
        elif described:
            text = f"{text}\n{described}".strip()
        return {
            "text": text,
            "unsupported": unsupported,
            "mentioned": mentioned,
            "reply_to_bot": reply_to_bot,
            "command": command,
            "edited": edited,
            "attachments": attachments,
        }

    def _attachments(self, message: TelegramMessage) -> tuple[InboundAttachment, ...]:
        found: list[InboundAttachment] = []
        if message.photo:
            largest = message.photo[-1]
            found.append(
                InboundAttachment(
                    kind="image",
                    platform_file_id=largest.file_id,
                    mime_type="image/jpeg",
                    size=largest.file_size,
                )
            )
        if message.voice:
            found.append(
                InboundAttachment(
                    kind="audio",
                    platform_file_id=message.voice.file_id,
                    mime_type=message.voice.mime_type or "audio/ogg",
                    file_name="voice.ogg",
                    size=message.voice.file_size,
                )
            )
        for kind in VIDEO_KINDS:
            video = getattr(message, kind, None)
            if video:
                found.append(
                    InboundAttachment(
                        kind="video",
                        platform_file_id=video.file_id,
                        mime_type=getattr(video, "mime_type", None) or "video/mp4",
                        file_name=getattr(video, "file_name", None) or f"{kind}.mp4",
                        size=video.file_size,
                    )
                )
        if message.document and not message.animation:  # an animation comes as both
            document = message.document
            is_image = (document.mime_type or "").startswith("image/")
            found.append(
                InboundAttachment(
                    kind="image" if is_image else "file",
                    platform_file_id=document.file_id,
                    mime_type=document.mime_type or "",
                    file_name=document.file_name or "",
                    size=document.file_size,
                )
            )
        return tuple(found)

    def _parse_callback(self, update: Update) -> InboundAction | None:
        query = update.callback_query
        if query is None:
            return None
        match = CALLBACK_DATA.match(query.data or "")
        if match is None:
            return None
        chat = query.message.chat if query.message is not None else None
        return InboundAction(
            external_id=f"callback:{query.id}",
            chat_id=str(chat.id) if chat else "",
            sender_id=str(query.from_user.id),
            action=match["action"],
            message_id=int(match["message_id"]),
            callback_id=query.id,
        )

    def _is_me(self, mention: str) -> bool:
        username = self.username()
        return bool(username) and mention.lower() == f"@{username}".lower()

    def username(self) -> str:
        """The bot's @username without the @, fetched with getMe when the bot has none yet.

        parse() reports a username it had to learn (IdentityLearned); the service keeps it.

        Without it a mention cannot be recognised, so failing to learn it raises a 503
        (Telegram redelivers the update later; the poller retries) rather than
        silently ignoring a message addressed to the bot.
        """
        if not self.bot.platform_username and not self._learned_username:
            try:
                me = asyncio.run(self._get_me())
            except TelegramError as error:
                logger.warning("getMe failed for bot %s: %s", self.bot.pk, error)
                raise WebhookRejected(
                    f"could not learn the bot's username (getMe: {error}); try again",
                    status=503,
                ) from error
            self._learned_username = me.username or ""
        return self.bot.platform_username or self._learned_username

    async def _get_me(self, *, read_timeout: float = 15):
        async with self._client(read_timeout=read_timeout) as client:
            return await client.get_me()

    def credentials_check(self) -> str:
        """Ask Telegram whose token this is (getMe); the bot's username, also kept on the bot.

        Raises DeliveryError: `retryable` when Telegram could not be reached or answered
        with a server error, not when it refused the token.
        """
        try:
            me = asyncio.run(self._get_me(read_timeout=10))
        except InvalidToken as error:  # 401, or 404 for a token that is not one
            # PTB's message quotes the token: never show or log it.
            raise DeliveryError("Telegram refused the token", retryable=False) from error
        except NetworkError as error:  # includes TimedOut and 5xx answers
            raise DeliveryError(f"{error.__class__.__name__}: {error}", retryable=True) from error
        except TelegramError as error:
            raise DeliveryError(f"{error.__class__.__name__}: {error}", retryable=False) from error
        self.bot.platform_username = me.username or ""
        return self.bot.platform_username

    # Outbound --------------------------------------------------------------------------

    @asynccontextmanager
    async def _client(self, *, read_timeout: float = 15) -> AsyncIterator[TelegramBot]:
        # A fresh client for one-off set-up calls from ordinary code (getMe, setWebhook,
        # long polling), each in its own asyncio.run(); PTB's httpx pool binds to the
        # event loop that first uses it. Sending uses `_shared_client()` instead.
        request = HTTPXRequest(connect_timeout=5, read_timeout=read_timeout, write_timeout=15)
        updates_request = HTTPXRequest(connect_timeout=5, read_timeout=5)
        api = self.bot.platform_api_base_url
        client = TelegramBot(
            self.bot.config.get("token", ""),
            base_url=f"{api}/bot",
            base_file_url=f"{api}/file/bot",
            request=request,
            get_updates_request=updates_request,
        )
        try:
            yield client
        finally:
            await asyncio.gather(request.shutdown(), updates_request.shutdown())

    def _shared_client(self) -> TelegramBot:
        """This bot's long-lived client on the process loop: one connection pool for all turns."""
        api = self.bot.platform_api_base_url
        key = (self.bot.pk, self.bot.config.get("token", "") or "", api)
        client = _shared_clients.get(key)
        if client is None:
            client = TelegramBot(
                self.bot.config.get("token", ""),
                base_url=f"{api}/bot",
                base_file_url=f"{api}/file/bot",
                request=AiohttpRequest(
                    connection_pool_size=CONNECTION_POOL_SIZE,
                    connect_timeout=5,
                    read_timeout=15,
                    write_timeout=15,
                    pool_timeout=POOL_TIMEOUT_SECONDS,
                ),
                get_updates_request=HTTPXRequest(connect_timeout=5, read_timeout=5),
            )
            _shared_clients[key] = client
        return client

    async def _acall(self, coroutine_function, *args, chat_id: str = "", **kwargs):
        """Run one async Bot API exchange, translating PTB errors into DeliveryError."""
        try:
            return await coroutine_function(*args, **kwargs)
        except RetryAfter as error:
            seconds = _seconds(error.retry_after)
            if chat_id:
                with suppress(redis.RedisError):  # the retry waits `seconds` anyway
                    await ChatPacer(self.bot, chat_id).hold(seconds)
            raise DeliveryError(str(error), retryable=True, retry_after=seconds) from error
        except ChatMigrated as error:
            moved = ChatMoved(old_chat_id=chat_id, new_chat_id=str(error.new_chat_id))
            raise DeliveryError(
                f"the group became a supergroup {error.new_chat_id}",
                retryable=True,
                chat_moved=moved if chat_id else None,
            ) from error
        except (BadRequest, Forbidden) as error:
            raise DeliveryError(f"{error.__class__.__name__}: {error}", retryable=False) from error
        except NetworkError as error:  # includes TimedOut and 5xx answers
            raise DeliveryError(f"{error.__class__.__name__}: {error}", retryable=True) from error
        except TelegramError as error:
            raise DeliveryError(f"{error.__class__.__name__}: {error}", retryable=False) from error

    async def _pace(self, chat_id: str, *, skip_if_busy: bool = False) -> bool:
        """Wait for the chat's next send slot; False (no slot taken) to skip a busy chat."""
        cap = PACE_STREAM_TOLERANCE_SECONDS if skip_if_busy else PACE_MAX_WAIT_SECONDS
        try:
            wait = await ChatPacer(self.bot, chat_id).reserve(cap=cap)
        except redis.RedisError as error:
            # Nothing is sent unpaced: a streaming update is skipped, a send tried later.
            if skip_if_busy:
                return False
            raise DeliveryError(f"pacing unavailable: {error}", retryable=True) from error
        if wait < 0:
            if skip_if_busy:
                return False
            raise DeliveryError("chat is busy; pacing", retryable=True, retry_after=-wait)
        if wait:
            await asyncio.sleep(wait)
        return True

    def _shown_key(self, chat_id: str, platform_message_id: str) -> str:
        return f"assistant:tgshown:{self.bot.pk}:{chat_id}:{platform_message_id}"

    @staticmethod
    def _fingerprint(text: str, markup: InlineKeyboardMarkup | None) -> str:
        """ "<text hash>:<keyboard hash>": what a message shows, to skip no-op edits."""
        # The buttons' own fields, not `markup.to_dict()` (PTB's serialisation of the
        # whole keyboard cost ~3 % of a worker's CPU in a burst; py-spy).
        keyboard = (
            repr(
                [[(b.text, b.callback_data, b.url) for b in row] for row in markup.inline_keyboard]
            )
            if markup
            else ""
        )
        return ":".join(hashlib.sha256(part.encode()).hexdigest()[:32] for part in (text, keyboard))

    # Bookkeeping after a call has reached Telegram must never lose what the call returned
    # (a message id lost here is a message sent twice): Redis failures are only logged.

    async def _remember_shown(self, chat_id: str, platform_message_id: str, fingerprint: str):
        try:
            await get_async_redis().set(
                self._shown_key(chat_id, platform_message_id), fingerprint, ex=86400
            )
        except redis.RedisError:
            logger.warning("could not remember what message %s shows", platform_message_id)

    async def _shown(self, chat_id: str, platform_message_id: str) -> str:
        try:
            shown = await get_async_redis().get(self._shown_key(chat_id, platform_message_id))
        except redis.RedisError:
            return ""  # unknown: the edit is made (Telegram refuses a no-op one, handled)
        return as_text(shown) if shown is not None else ""

    async def _send_piece(
        self,
        client: TelegramBot,
        *,
        chat_id: str,
        text: str,
        reply_to: str = "",
        markup: InlineKeyboardMarkup | None = None,
        answer_id: int | None = None,
    ) -> str:
        """Send one message; with `answer_id` (the first text of a streaming answer), also
        note where the answer is shown and that its first piece is sent, in the same trip."""
        reply = (
            ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True)
            if reply_to
            else None
        )
        try:
            sent = await client.send_message(
                chat_id=int(chat_id),
                text=to_html(text),
                parse_mode=ParseMode.HTML,
                reply_parameters=reply,
                reply_markup=markup,
            )
        except BadRequest as error:
            if "can't parse entities" not in str(error).lower():
                raise
            logger.warning("Telegram refused our HTML (%s); sending plain text", error)
            sent = await client.send_message(
                chat_id=int(chat_id), text=text, reply_parameters=reply, reply_markup=markup
            )
        platform_message_id = str(sent.message_id)
        try:
            async with get_async_redis().pipeline(transaction=False) as pipe:
                if answer_id is not None:
                    pipe.set(answer_shown_key(answer_id), platform_message_id, ex=86400)
                    pipe.hset(self._progress_key(answer_id), "0", platform_message_id)
                    pipe.expire(self._progress_key(answer_id), 7 * 86400)
                pipe.set(
                    self._shown_key(chat_id, platform_message_id),
                    self._fingerprint(text, markup),
                    ex=86400,
                )
                await pipe.execute()
        except redis.RedisError:
            logger.warning("could not note message %s as sent", platform_message_id)
        return platform_message_id

    async def _edit_piece(
        self,
        client: TelegramBot,
        *,
        chat_id: str,
        platform_message_id: str,
        text: str,
        markup: InlineKeyboardMarkup | None = None,
        skip_if_busy: bool = False,
    ) -> bool:
        """Edit a sent message; False (and no call) when it already shows exactly this.

        Only the keyboard changed (the final edit after streaming): only the keyboard
        is edited, so the text is never sent twice.
        """
        fingerprint = self._fingerprint(text, markup)
        shown = await self._shown(chat_id, platform_message_id)
        if shown == fingerprint:
            return False
        if not await self._pace(chat_id, skip_if_busy=skip_if_busy):
            return False
        arguments: dict[str, Any] = {
            "chat_id": int(chat_id),
            "message_id": int(platform_message_id),
            "reply_markup": markup,
        }
        try:
            if shown.split(":")[0] == fingerprint.split(":")[0]:
                await client.edit_message_reply_markup(**arguments)
            else:
                try:
                    await client.edit_message_text(
                        text=to_html(text), parse_mode=ParseMode.HTML, **arguments
                    )
                except BadRequest as error:
                    if "can't parse entities" not in str(error).lower():
                        raise
                    await client.edit_message_text(text=text, **arguments)
        except BadRequest as error:
            if "not modified" not in str(error).lower():
                raise
        await self._remember_shown(chat_id, platform_message_id, fingerprint)
        return True

    # Which pieces of a long answer are already in the chat, so a retried delivery
    # resumes instead of repeating them.
    def _progress_key(self, message_id: int) -> str:
        return f"assistant:tgparts:{self.bot.pk}:{message_id}"

    async def _progress(self, message_id: int) -> dict[int, str]:
        try:
            stored = await get_async_redis().hgetall(self._progress_key(message_id))
        except redis.RedisError as error:
            # Unknown what an earlier try sent: send nothing now, try again later.
            raise DeliveryError(f"progress unavailable: {error}", retryable=True) from error
        return {int(index): as_text(value) for index, value in stored.items()}

    async def _progress_record(self, message_id: int, index: int, platform_message_id: str):
        key = self._progress_key(message_id)
        try:
            async with get_async_redis().pipeline(transaction=False) as pipe:
                pipe.hset(key, str(index), platform_message_id)
                pipe.expire(key, 7 * 86400)
                await pipe.execute()
        except redis.RedisError:
            logger.warning("could not record piece %s of answer %s as sent", index, message_id)

    async def _send(self, message: OutboundMessage) -> SentMessage:
        pieces = split_text(message.text)
        # Which pieces an earlier try already sent; not needed for the common case, one
        # piece already streamed into the chat (its message id is on the answer).
        streamed_whole = len(pieces) == 1 and message.platform_message_id
        done = {} if streamed_whole else await self._progress(message.message_id)
        markup = keyboard(message)
        ids: list[str] = []
        client = self._shared_client()
        for index, piece in enumerate(pieces):
            piece_markup = markup if index == len(pieces) - 1 else None
            streamed = message.platform_message_id or done.get(0, "")
            if index == 0 and streamed:
                # Streaming already showed this answer: finalize that message.
                await self._edit_piece(
                    client,
                    chat_id=message.chat_id,
                    platform_message_id=streamed,
                    text=piece,
                    markup=piece_markup,
                )
                ids.append(streamed)
                continue
            if index in done:
                ids.append(done[index])
                continue
            await self._pace(message.chat_id)
            sent_id = await self._send_piece(
                client,
                chat_id=message.chat_id,
                text=piece,
                reply_to=message.reply_to_platform_message_id if index == 0 else "",
                markup=piece_markup,
            )
            await self._progress_record(message.message_id, index, sent_id)
            ids.append(sent_id)
        return SentMessage(platform_message_id=ids[0])

    async def asend(self, message: OutboundMessage) -> SentMessage:
        if not message.text.strip():
            raise DeliveryError("empty answer", retryable=False)
        return await self._acall(self._send, message, chat_id=message.chat_id)

    def send(self, message: OutboundMessage) -> SentMessage:
        return process_loop.run(self.asend(message))

    async def _stream(self, message: OutboundMessage, text: str) -> str:
        # Streaming is a courtesy: when the chat's pace says wait, this update is
        # skipped (the next one or the final send() shows the text) instead of
        # holding up the model's stream.
        piece = split_text(text)[0]
        client = self._shared_client()
        if message.platform_message_id:
            await self._edit_piece(
                client,
                chat_id=message.chat_id,
                platform_message_id=message.platform_message_id,
                text=piece,
                skip_if_busy=True,
            )
            return message.platform_message_id
        if not await self._pace(message.chat_id, skip_if_busy=True):
            return ""
        platform_message_id = await self._send_piece(
            client,
            chat_id=message.chat_id,
            text=piece,
            reply_to=message.reply_to_platform_message_id,
            # The finished answer's delivery (or the turn after a lost worker) edits this
            # message instead of sending another.
            answer_id=message.message_id,
        )
        return platform_message_id

    async def astream_update(self, message: OutboundMessage, text: str) -> str:
        if not text.strip():
            return message.platform_message_id
        return await self._acall(self._stream, message, text, chat_id=message.chat_id)

    def stream_update(self, message: OutboundMessage, text: str) -> str:
        return process_loop.run(self.astream_update(message, text))

    async def atyping(self, message: OutboundMessage) -> None:
        """Show "typing…" (Telegram shows it for about 5 s; the turn repeats it)."""
        with suppress(Exception):
            await self._shared_client().send_chat_action(
                chat_id=int(message.chat_id), action=ChatAction.TYPING, read_timeout=5
            )

    def typing(self, message: OutboundMessage) -> None:
        process_loop.run(self.atyping(message))

    async def _download(self, file_id: str) -> bytes:
        client = self._shared_client()
        telegram_file = await client.get_file(file_id, read_timeout=60)
        return bytes(await telegram_file.download_as_bytearray(read_timeout=60))

    async def adownload(self, *, message_platform_id: str, attachment: InboundAttachment) -> bytes:
        return await self._acall(self._download, attachment.platform_file_id)

    def download(self, *, message_platform_id: str, attachment: InboundAttachment) -> bytes:
        return process_loop.run(
            self.adownload(message_platform_id=message_platform_id, attachment=attachment)
        )

    async def _answer_callback(self, callback_id: str, text: str) -> None:
        await self._shared_client().answer_callback_query(
            callback_query_id=callback_id, text=text[:200], read_timeout=5
        )

    def answer_action(self, action: InboundAction, text: str) -> None:
        if not action.callback_id:
            return
        try:
            process_loop.run(self._answer_callback(action.callback_id, text))
        except TelegramError as error:
            logger.warning("answerCallbackQuery failed: %s", error)

    # Setup -----------------------------------------------------------------------------

    async def _register_commands(self, client: TelegramBot) -> None:
        await client.set_my_commands(
            [BotCommand(name, description) for name, description in COMMANDS.items()]
        )

    async def _set_webhook(self, url: str) -> tuple[bool, str]:
        async with self._client() as client:
            me = await client.get_me()
            done = await client.set_webhook(
                url=url,
                secret_token=self.bot.config.get("webhook_secret", ""),
                allowed_updates=ALLOWED_UPDATES,
            )
            await self._register_commands(client)
            return done, me.username or ""

    def set_webhook(self, url: str) -> tuple[bool, str]:
        """Register `url` with Telegram, with this bot's secret token, and the commands.

        Returns whether Telegram took it, and the bot's username (for the caller to keep).
        """
        return asyncio.run(self._set_webhook(url))

    async def _prepare_polling(self) -> str:
        async with self._client() as client:
            me = await client.get_me()
            await client.delete_webhook(drop_pending_updates=False)
            await self._register_commands(client)
            return me.username or ""

    def prepare_polling(self) -> str:
        """Before long polling: drop the webhook, register commands; returns our username."""
        return asyncio.run(self._prepare_polling())

    async def _get_updates(self, *, offset: int | None, timeout: int) -> tuple[Update, ...]:
        async with self._client() as client:
            return await client.get_updates(
                offset=offset,
                timeout=timeout,
                allowed_updates=ALLOWED_UPDATES,
                read_timeout=5,
            )

    def poll(
        self,
        *,
        offset: int | None,
        timeout: int,
        watchdog: float,
        should_stop: Callable[[], bool] | None = None,
    ) -> tuple[Update, ...]:
        """One long poll (getUpdates), returning the updates from `offset` on.

        Raises TimeoutError when the poll has not returned after `watchdog` seconds (the
        request is abandoned) and PTB's TelegramError on API or network errors. Returns
        nothing as soon as `should_stop()` is true.
        """

        async def guarded() -> tuple[Update, ...]:
            loop = asyncio.get_running_loop()
            task = asyncio.ensure_future(self._get_updates(offset=offset, timeout=timeout))
            deadline = loop.time() + watchdog
            try:
                while not task.done():
                    if should_stop is not None and should_stop():
                        return ()
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise TimeoutError(f"getUpdates did not return within {watchdog:.0f}s")
                    await asyncio.wait({task}, timeout=min(0.25, remaining))
                return task.result()
            finally:
                if not task.done():
                    task.cancel()
                    with suppress(asyncio.CancelledError, TelegramError):
                        await task

        return asyncio.run(guarded())
