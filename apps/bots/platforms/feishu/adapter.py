"""Feishu / Lark, through lark-oapi: the adapter (verify, parse, send, stream).

In: schema 2.0 events by webhook (optionally AES-encrypted and signed) or by the
long connection (the package's connector); im.message.receive_v1 messages
and card.action.trigger button presses. Out: interactive cards replying to the
triggering message, updated in place while the answer streams.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import lark_oapi as lark
import requests
from lark_oapi.api.im.v1 import (
    CreateMessageRequest,
    CreateMessageRequestBody,
    GetMessageResourceRequest,
    PatchMessageRequest,
    PatchMessageRequestBody,
    ReplyMessageRequest,
    ReplyMessageRequestBody,
)
from lark_oapi.core.cache import ICache
from lark_oapi.core.exception import ObtainAccessTokenException

from apps.bots.platforms.base import (
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
)
from apps.bots.platforms.feishu.formatting import answer_card, card_split
from apps.bots.platforms.feishu.parsing import (
    COMMANDS,
    MENTION_KEY,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    SIGNATURE_MAX_AGE,
    TIMESTAMP_HEADER,
    _content,
    _get,
    _id,
    _list,
    _other_content,
    _post_at_ids,
    _post_body,
    _str,
    event_decrypt,
    event_signature,
)
from apps.bots.platforms.feishu.reply import _reply
from apps.core.redis import as_text, get_redis

if TYPE_CHECKING:
    from apps.bots.models import Bot

logger = logging.getLogger(__name__)

RATE_LIMIT_CODES = {99991400, 230020}
TOKEN_INVALID_CODES = {99991661, 99991663, 99991664, 99991665, 99991668}


# Tokens ---------------------------------------------------------------------------------


# Messages (and post elements) that carry a file: how it is kept. A `media` message is a
# video (with its cover image), read as key frames like other videos.
FILE_KINDS = {"file": "file", "audio": "audio", "media": "video"}


class RedisTokenCache(ICache):
    """lark-oapi's token cache in Redis, so every process shares one tenant_access_token."""

    prefix = "assistant:feishu:token:"

    def get(self, key: str) -> str | None:
        value = get_redis().get(self.prefix + key)
        return as_text(value) if value is not None else None

    def set(self, key: str, value: str, expire: int) -> None:
        # `expire` is a Unix timestamp (lark already subtracts a 10-minute margin).
        if expire > time.time():
            get_redis().set(self.prefix + key, value, exat=int(expire))

    def forget(self, app_id: str) -> None:
        get_redis().delete(f"{self.prefix}self_tenant_token:{app_id}")


TOKEN_CACHE = RedisTokenCache()


class FeishuAdapter:
    """Feishu/Lark Open Platform: webhook checks and event parsing, cards sent with lark-oapi."""

    stream_interval = 0.5  # PATCH allows 5 QPS per message; stay well under it
    download_limit_bytes = 100 * 1024 * 1024  # message resources: files up to 100 MB
    typing_every = None  # no typing indicator for bots; the streaming card shows progress

    def __init__(self, bot: Bot):
        self.bot = bot
        self._client: lark.Client | None = None
        self._learned_open_id = ""  # from bot info during this parse; reported, not stored

    # Webhook ----------------------------------------------------------------------------

    def verify(self, *, headers: dict[str, str], body: bytes, query=None) -> None:
        expected_token = self.bot.config.get("verification_token", "") or ""
        if not expected_token:
            raise WebhookRejected("the bot has no Verification Token configured", status=403)
        # The signature covers the raw body: check it before decrypting anything.
        signed = bool(self.bot.config.get("encrypt_key", "")) and self._signature_present(headers)
        if signed:
            self._check_signature(headers, body)
        data = event_decrypt(body, self.bot.config.get("encrypt_key", "") or "")
        if data.get("type") == "url_verification":
            # Feishu does not sign the URL check; its token is top-level.
            self._check_token(data.get("token"), expected_token)
            return
        if self.bot.config.get("encrypt_key", "") and not signed:
            raise WebhookRejected("missing signature", status=403)
        token = _get(data, "header", "token") if data.get("schema") else data.get("token")
        self._check_token(token, expected_token)

    @staticmethod
    def _check_token(given: Any, expected: str) -> None:
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookRejected("bad verification token", status=403)

    @staticmethod
    def _signature_present(headers: dict[str, str]) -> bool:
        return any(key.lower() == SIGNATURE_HEADER.lower() for key in headers)

    def _check_signature(self, headers: dict[str, str], body: bytes) -> None:
        lowered = {key.lower(): value for key, value in headers.items()}
        timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
        nonce = lowered.get(NONCE_HEADER.lower(), "")
        signature = lowered.get(SIGNATURE_HEADER.lower(), "")
        try:
            age = abs(time.time() - int(timestamp))
        except (ValueError, OverflowError):
            raise WebhookRejected("missing or bad request timestamp", status=403) from None
        if age > SIGNATURE_MAX_AGE:
            raise WebhookRejected("stale request timestamp", status=403)
        expected = event_signature(
            timestamp=timestamp,
            nonce=nonce,
            encrypt_key=self.bot.config.get("encrypt_key", ""),
            body=body,
        )
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise WebhookRejected("bad signature", status=403)

    def parse(self, *, body: bytes) -> list[InboundItem]:
        data = event_decrypt(body, self.bot.config.get("encrypt_key", "") or "")
        if data.get("type") == "url_verification":
            challenge = data.get("challenge")
            if not isinstance(challenge, str):
                raise WebhookRejected("url_verification without a challenge", status=400)
            reply = _reply.get()
            if reply is not None:
                reply.challenge = challenge
            return []
        items: list[InboundItem]
        items = list(self.parse_event(data))
        if self._learned_open_id:
            items.append(IdentityLearned(username=self._learned_open_id))
        return items

    def parse_event(self, data: dict[str, Any]) -> list[InboundMessage | InboundAction]:
        """The messages and button presses in one decrypted schema 2.0 event."""
        header = data.get("header")
        event = data.get("event")
        if data.get("schema") != "2.0" or not isinstance(header, dict):
            raise EventNotUnderstood("not a schema 2.0 event")
        event_id = _id(header.get("event_id"), "event_id")
        if not isinstance(event, dict):
            raise EventNotUnderstood("event without a body")
        event_type = header.get("event_type")
        if event_type == "im.message.receive_v1":
            inbound = self._message(event_id, event)
            return [inbound] if inbound else []
        if event_type == "card.action.trigger":
            reply = _reply.get()
            if reply is not None:
                reply.is_card_action = True
            action = self._card_action(event_id, event)
            return [action] if action else []
        return []

    def _message(self, event_id: str, event: dict[str, Any]) -> InboundMessage | None:
        message = event.get("message")
        if not isinstance(message, dict):
            raise EventNotUnderstood("message event without a message")
        if _get(event, "sender", "sender_type") == "app":
            return None  # our own (or another bot's) messages
        chat_id = _id(message.get("chat_id"), "chat_id")
        message_id = _id(message.get("message_id"), "message_id")
        mentions = [
            m for m in _list(message.get("mentions")) if isinstance(m, dict) and _str(m.get("key"))
        ]
        bot_open_id = self.bot_open_id() if mentions else self.bot.platform_username
        if bot_open_id:
            bot_keys = {m.get("key") for m in mentions if _get(m, "id", "open_id") == bot_open_id}
        else:
            # We could not learn our own open_id. Without the sensitive "read all group
            # messages" scope Feishu only delivers group messages that @mention the bot,
            # so answering beats silently missing them.
            bot_keys = {m.get("key") for m in mentions}
        names = {m["key"]: _str(m.get("name")) for m in mentions}

        def unmention(text: str) -> str:
            def swap(match: re.Match) -> str:
                key, space = match.group(1), match.group(2)
                if key in bot_keys:
                    return ""
                return (f"@{names[key]}" if names.get(key) else key) + space

            return MENTION_KEY.sub(swap, text)

        kind = message.get("message_type")
        content = _content(message)
        attachments: list[InboundAttachment] = []
        text = ""
        unsupported = ""
        if kind == "text":
            text = unmention(_str(content.get("text")))
        elif kind == "post":
            post = _post_body(content)
            at_ids = _post_at_ids(post)
            if at_ids and not mentions:
                # Without a `mentions` list an @ in the post carries the open_id itself.
                own_id = self.bot_open_id()
                if own_id in at_ids:
                    bot_keys = {own_id}
            text, attachments = self._post(post, bot_keys, names)
        elif kind == "image" and _str(content.get("image_key")):
            attachments.append(
                InboundAttachment(
                    kind="image", platform_file_id=_id(content["image_key"], "image_key", 512)
                )
            )
        elif kind in ("file", "audio", "media") and _str(content.get("file_key")):
            attachments.append(
                InboundAttachment(
                    kind=FILE_KINDS[kind],
                    platform_file_id=_id(content["file_key"], "file_key", 512),
                    # Voice messages are Ogg Opus; the name tells transcription APIs so.
                    file_name=_str(content.get("file_name"))[:255]
                    or ("voice.ogg" if kind == "audio" else ""),
                    mime_type={"audio": "audio/ogg", "media": "video/mp4"}.get(kind, ""),
                )
            )
        else:
            text, unsupported = _other_content(kind, content)
            if not text:
                return None
        text = text.strip()
        command = ""
        is_private = message.get("chat_type") == "p2p"
        # In groups a command counts only when addressed to us (other bots share the chat).
        if text.startswith("/") and (is_private or bot_keys):
            word = text[1:].split(maxsplit=1)[0].lower() if len(text) > 1 else ""
            command = word if word in COMMANDS else ""
        # open_id normally; an app without that scope may see only union_id or user_id.
        sender_ids = _get(event, "sender", "sender_id", default={})
        sender_id = _id(
            _get(sender_ids, "open_id")
            or _get(sender_ids, "union_id")
            or _get(sender_ids, "user_id"),
            "sender id",
        )
        return InboundMessage(
            external_id=event_id,
            chat_id=chat_id,
            chat_type="private" if is_private else "group",
            sender_id=sender_id,
            sender_name="",
            text=text,
            platform_message_id=message_id,
            mentioned=bool(bot_keys),
            command=command,
            attachments=tuple(attachments),
            unsupported=unsupported,
        )

    @staticmethod
    def _post(
        post: dict[str, Any], bot_keys: set, names: dict
    ) -> tuple[str, list[InboundAttachment]]:
        lines: list[str] = []
        attachments: list[InboundAttachment] = []
        title = post.get("title")
        if isinstance(title, str) and title.strip():
            lines.append(title.strip())
        for paragraph in _list(post.get("content")):
            parts: list[str] = []
            for element in _list(paragraph):
                if not isinstance(element, dict):
                    continue
                tag = element.get("tag")
                if tag in ("text", "a", "code_block"):
                    parts.append(_str(element.get("text")))
                elif tag == "code":
                    parts.append(f"`{_str(element.get('text'))}`")
                elif tag == "emotion":
                    parts.append(f":{_str(element.get('emoji_type'))}:")
                elif tag == "at":
                    key = _str(element.get("user_id"))
                    if key not in bot_keys:
                        parts.append(f"@{_str(element.get('user_name')) or names.get(key) or ''}")
                elif tag == "img" and _str(element.get("image_key")):
                    attachments.append(
                        InboundAttachment(
                            kind="image", platform_file_id=_id(element["image_key"], "image", 512)
                        )
                    )
                elif tag in ("media", "file") and _str(element.get("file_key")):
                    attachments.append(
                        InboundAttachment(
                            kind=FILE_KINDS[tag],
                            platform_file_id=_id(element["file_key"], "media", 512),
                            mime_type="video/mp4" if tag == "media" else "",
                        )
                    )
            line = "".join(parts).strip()
            if line:
                lines.append(line)
        return "\n".join(lines), attachments

    def _card_action(self, event_id: str, event: dict[str, Any]) -> InboundAction | None:
        value = _get(event, "action", "value")
        if not isinstance(value, dict):
            return None
        try:
            message_id = int(value.get("message_id", ""))
        except (TypeError, ValueError, OverflowError):
            return None
        if not 0 < message_id < 2**63:
            return None
        return InboundAction(
            external_id=event_id,
            chat_id=_str(_get(event, "context", "open_chat_id"))[:128],
            sender_id=_str(_get(event, "operator", "open_id"))[:128],
            action=_str(value.get("action")),
            message_id=message_id,
            callback_id=event_id,
        )

    def answer_action(self, action: InboundAction, text: str) -> None:
        # Feishu wants the toast in the callback's HTTP response, not as an API call.
        reply = _reply.get()
        if reply is not None:
            reply.toasts.append(text)

    def bot_open_id(self) -> str:
        """The bot's own open_id (what its @mentions carry), asked of Feishu when unknown.

        Kept in Bot.platform_username: parse() reports one it had to learn
        (IdentityLearned) and the service stores it. "" when Feishu cannot be asked now.
        """
        if self.bot.platform_username or self._learned_open_id:
            return self.bot.platform_username or self._learned_open_id
        request = (
            lark.BaseRequest.builder()
            .http_method(lark.HttpMethod.GET)
            .uri("/open-apis/bot/v3/info")
            .token_types({lark.AccessTokenType.TENANT})
            .build()
        )
        try:
            client = self.client()
            response = self._call("bot info", lambda: client.request(request))
            open_id = json.loads(response.raw.content)["bot"]["open_id"]
        except (DeliveryError, KeyError, TypeError, ValueError) as error:
            logger.warning("feishu bot %s: cannot learn its open_id: %s", self.bot.pk, error)
            return ""
        self._learned_open_id = open_id
        return open_id

    def sender_name(self, sender_id: str) -> str:
        """A user's name (Contact API `GET /open-apis/contact/v3/users/:user_id`), for staff
        to see who wrote: message events carry only ids. Needs one of the app's contact
        scopes (e.g. `contact:user.base:readonly`); raises DeliveryError when refused."""
        from lark_oapi.api.contact.v3 import GetUserRequest

        # The id's kind, as parse() took it: an open_id normally, else union_id or user_id.
        kind = {"ou_": "open_id", "on_": "union_id"}.get(sender_id[:3], "user_id")
        request = GetUserRequest.builder().user_id(sender_id).user_id_type(kind).build()
        client = self.client()
        response = self._call("user name", lambda: client.contact.v3.user.get(request))
        user = response.data.user if response.data else None
        return (user.name or user.en_name or "") if user else ""

    def credentials_check(self) -> str:
        """Get a tenant_access_token with the app ID and secret (never from the cache).

        Returns the app ID. Raises DeliveryError: `retryable` when Feishu could not be
        reached or answered with a server error, not when it refused the app's credentials.
        """
        from lark_oapi.api.auth.v3 import (
            InternalTenantAccessTokenRequest,
            InternalTenantAccessTokenRequestBody,
        )

        request = (
            InternalTenantAccessTokenRequest.builder()
            .request_body(
                InternalTenantAccessTokenRequestBody.builder()
                .app_id(self.bot.config.get("app_id", ""))
                .app_secret(self.bot.config.get("app_secret", ""))
                .build()
            )
            .build()
        )
        client = self.client()
        self._call("tenant token", lambda: client.auth.v3.tenant_access_token.internal(request))
        return self.bot.config.get("app_id", "")

    # Sending ----------------------------------------------------------------------------

    def client(self) -> lark.Client:
        """A lark-oapi client for this bot; tokens live in Redis, shared by all processes."""
        if self._client is not None:
            return self._client
        try:
            self._client = (
                lark.Client.builder()
                .app_id(self.bot.config.get("app_id", ""))
                .app_secret(self.bot.config.get("app_secret", ""))
                .domain(self.bot.platform_api_base_url)
                .timeout(15)
                .cache(TOKEN_CACHE)
                .log_level(lark.LogLevel.WARNING)
                .build()
            )
        except ValueError as error:  # a domain lark-oapi refuses
            raise DeliveryError(f"bad Feishu API base URL: {error}", retryable=False) from error
        return self._client

    def _call(self, what: str, function: Callable[[], Any]) -> Any:
        """Run one SDK call; turn every failure into a DeliveryError that says if retrying helps."""
        try:
            response = function()
        except ObtainAccessTokenException as error:
            code = getattr(error, "code", None)
            raise DeliveryError(
                f"{what}: cannot get a tenant_access_token: {error}",
                retryable=code not in (10003, 10014),  # 10003/10014: bad app id / secret
            ) from error
        except requests.RequestException as error:
            raise DeliveryError(
                f"{what}: {error.__class__.__name__}: {error}", retryable=True
            ) from error
        except ValueError as error:  # a body that is not JSON: an overloaded proxy, a 5xx page
            raise DeliveryError(f"{what}: unreadable answer: {error}", retryable=True) from error
        if response.success():
            return response
        raw = response.raw
        status = raw.status_code if raw is not None else 0
        code = response.code
        message = f"{what}: HTTP {status}, code {code}: {response.msg}"
        if status == 429 or code in RATE_LIMIT_CODES:
            headers = {k.lower(): v for k, v in ((raw.headers if raw else None) or {}).items()}
            reset = headers.get("x-ogw-ratelimit-reset")
            try:
                retry_after = max(float(reset), 0.5) if reset is not None else 1.0
            except ValueError:
                retry_after = 1.0
            raise DeliveryError(message, retryable=True, retry_after=retry_after)
        if code in TOKEN_INVALID_CODES:
            TOKEN_CACHE.forget(self.bot.config.get("app_id", ""))
            raise DeliveryError(message, retryable=True)
        raise DeliveryError(message, retryable=status >= 500 or status == 0)

    def _reply(self, client: lark.Client, *, to: str, card: dict, uuid: str) -> str:
        request = (
            ReplyMessageRequest.builder()
            .message_id(to)
            .request_body(
                ReplyMessageRequestBody.builder()
                .msg_type("interactive")
                .content(json.dumps(card, ensure_ascii=False))
                .uuid(uuid)
                .build()
            )
            .build()
        )
        response = self._call("reply", lambda: client.im.v1.message.reply(request))
        return response.data.message_id

    def _patch(self, client: lark.Client, *, message_id: str, card: dict) -> None:
        request = (
            PatchMessageRequest.builder()
            .message_id(message_id)
            .request_body(
                PatchMessageRequestBody.builder()
                .content(json.dumps(card, ensure_ascii=False))
                .build()
            )
            .build()
        )
        self._call("update card", lambda: client.im.v1.message.patch(request))

    def _create(self, client: lark.Client, *, chat_id: str, card: dict, uuid: str) -> str:
        request = (
            CreateMessageRequest.builder()
            .receive_id_type("chat_id")
            .request_body(
                CreateMessageRequestBody.builder()
                .receive_id(chat_id)
                .msg_type("interactive")
                .content(json.dumps(card, ensure_ascii=False))
                .uuid(uuid)
                .build()
            )
            .build()
        )
        response = self._call("send", lambda: client.im.v1.message.create(request))
        return response.data.message_id

    def _put(self, client: lark.Client, message: OutboundMessage, card: dict, part: int) -> str:
        uuid = f"answer-{message.message_id}-{part}"
        if message.reply_to_platform_message_id:
            return self._reply(
                client, to=message.reply_to_platform_message_id, card=card, uuid=uuid
            )
        return self._create(client, chat_id=message.chat_id, card=card, uuid=uuid)

    def _stream_key(self, message: OutboundMessage) -> str:
        return f"assistant:feishu:streamed:{self.bot.pk}:{message.message_id}"

    def send(self, message: OutboundMessage) -> SentMessage:
        if not message.text.strip():
            raise DeliveryError("empty answer", retryable=False)
        client = self.client()
        pieces = card_split(message.text)
        first_id = message.platform_message_id
        for part, piece in enumerate(pieces):
            last = part == len(pieces) - 1
            card = answer_card(
                piece, message_id=message.message_id, with_actions=message.with_actions and last
            )
            if part == 0 and first_id:
                # Streaming already put this card in the chat: finalize it in place.
                self._patch(client, message_id=first_id, card=card)
                continue
            platform_id = self._put(client, message, card, part)
            if part == 0:
                first_id = platform_id
                if get_redis().exists(self._stream_key(message)):
                    # A stream started but its card id was lost (a timeout after Feishu
                    # took it). The same uuid returned that card: give it the full text.
                    self._patch(client, message_id=platform_id, card=card)
        return SentMessage(platform_message_id=first_id)

    def stream_update(self, message: OutboundMessage, text: str) -> str:
        if not text.strip():
            return message.platform_message_id
        client = self.client()
        card = answer_card(card_split(text)[0], message_id=message.message_id, streaming=True)
        if message.platform_message_id:
            self._patch(client, message_id=message.platform_message_id, card=card)
            return message.platform_message_id
        get_redis().set(self._stream_key(message), 1, ex=86400)
        # Same uuid as the final first part: a retried send can never add a second card.
        return self._put(client, message, card, 0)

    def typing(self, message: OutboundMessage) -> None:
        pass  # Feishu has no typing indicator for bots; the streaming card shows progress

    async def atyping(self, message: OutboundMessage) -> None:
        pass

    def download(self, *, message_platform_id: str, attachment: InboundAttachment) -> bytes:
        request = (
            GetMessageResourceRequest.builder()
            .message_id(message_platform_id)
            .file_key(attachment.platform_file_id)
            .type("image" if attachment.kind == "image" else "file")
            .build()
        )
        client = self.client()
        response = self._call("download", lambda: client.im.v1.message_resource.get(request))
        return response.file.read()
