"""WeCom (企业微信) self-built app: callback checks and parsing, sending via message/send.

In: the URL check (GET with msg_signature, timestamp, nonce, echostr) and encrypted XML
callbacks (接收消息与事件): text, image, voice, file; location as text; events ignored.
Out: text messages to the member (发送应用消息), with an access_token (获取access_token)
shared by every process through Redis until shortly before it expires.
"""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import httpx
import redis

from apps.bots.platforms.base import (
    DeliveryError,
    InboundAttachment,
    InboundItem,
    OutboundMessage,
    SentMessage,
    WebhookRejected,
)
from apps.bots.platforms.wecom import crypto
from apps.bots.platforms.wecom.formatting import text_split
from apps.bots.platforms.wecom.parsing import message_parse, xml_fields
from apps.core.redis import as_text, get_redis

if TYPE_CHECKING:
    from apps.bots.models import Bot

logger = logging.getLogger(__name__)

# Replay protection: WeCom signs the timestamp; we accept 5 minutes either way.
SIGNATURE_MAX_AGE = 300
TOKEN_MARGIN_SECONDS = 300  # renew the access_token this long before WeCom expires it
TOKEN_INVALID_CODES = {40014, 42001, 42007, 42009}  # invalid / expired access_token
RATE_LIMIT_CODES = {45009, 45033, 45047}
CREDENTIAL_CODES = {40001, 40013, 40056, 40091, 41002, 41004}  # bad corp ID / secret
SYSTEM_BUSY = -1

# One connection pool per process for every WeCom bot (httpx.Client is thread-safe).
_client: httpx.Client | None = None


def _http() -> httpx.Client:
    global _client
    if _client is None:
        _client = httpx.Client(timeout=httpx.Timeout(15.0, connect=5.0))
    return _client


class WeComAdapter:
    """A WeCom self-built app's callbacks and messages."""

    stream_interval = None  # app messages cannot be edited: the answer is sent whole
    typing_every = None  # no typing indicator

    def __init__(self, bot: Bot):
        self.bot = bot
        self.config = bot.config or {}

    # Callbacks ----------------------------------------------------------------------------

    def _signed(self, query: dict[str, str], encrypted: str) -> None:
        timestamp = query.get("timestamp", "")
        try:
            age = abs(time.time() - int(timestamp))
        except (ValueError, OverflowError):
            raise WebhookRejected("missing or bad timestamp", status=403) from None
        if age > SIGNATURE_MAX_AGE:
            raise WebhookRejected("stale timestamp", status=403)
        crypto.signature_check(
            token=self.config.get("token", ""),
            timestamp=timestamp,
            nonce=query.get("nonce", ""),
            encrypted=encrypted,
            given=query.get("msg_signature", ""),
        )

    def handshake(self, *, query: dict[str, str]) -> str:
        """The URL check: verify the signature over echostr and answer its plaintext."""
        echo = query.get("echostr", "")
        if not echo or not self.config.get("token"):
            raise WebhookRejected("not a WeCom URL check", status=403)
        self._signed(query, echo)
        return crypto.decrypt(
            encoding_aes_key=self.config.get("encoding_aes_key", ""),
            encrypted=echo,
            receive_id=self.config.get("corp_id", ""),
        ).decode("utf-8", "replace")

    def verify(self, *, headers: dict[str, str], body: bytes, query=None) -> None:
        if not self.config.get("token"):
            raise WebhookRejected("the bot has no callback token configured", status=403)
        encrypted = xml_fields(body).get("Encrypt", "")
        if not encrypted:
            raise WebhookRejected("no Encrypt element", status=400)
        self._signed(query or {}, encrypted)

    def parse(self, *, body: bytes) -> list[InboundItem]:
        encrypted = xml_fields(body).get("Encrypt", "")
        if not encrypted:
            raise WebhookRejected("no Encrypt element", status=400)
        plain = crypto.decrypt(
            encoding_aes_key=self.config.get("encoding_aes_key", ""),
            encrypted=encrypted,
            receive_id=self.config.get("corp_id", ""),
        )
        inbound = message_parse(xml_fields(plain))
        return [inbound] if inbound is not None else []

    # The access token ---------------------------------------------------------------------

    def _token_key(self) -> str:
        return f"assistant:wecom:token:{self.bot.pk}"

    def _fetch_token(self) -> tuple[str, int]:
        answer = self._call(
            "GET",
            "/cgi-bin/gettoken",
            "gettoken",
            params={
                "corpid": self.config.get("corp_id", ""),
                "corpsecret": self.config.get("secret", ""),
            },
            authenticated=False,
        )
        return answer["access_token"], int(answer.get("expires_in", 7200))

    def access_token(self) -> str:
        """The app's access_token from Redis, fetched (and cached until it expires) if absent."""
        key = self._token_key()
        try:
            cached = get_redis().get(key)
        except redis.RedisError:
            cached = None
        if cached is not None:
            return as_text(cached)
        token, expires_in = self._fetch_token()
        try:
            get_redis().set(key, token, ex=max(expires_in - TOKEN_MARGIN_SECONDS, 60))
        except redis.RedisError:
            logger.warning("could not cache the WeCom access_token of bot %s", self.bot.pk)
        return token

    def _forget_token(self) -> None:
        with suppress(redis.RedisError):
            get_redis().delete(self._token_key())

    def credentials_check(self) -> str:
        """Get an access_token with the corp ID and secret (never from the cache)."""
        self._fetch_token()
        return self.config.get("corp_id", "")

    # Calls --------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        authenticated: bool = True,
        raw: bool = False,
    ) -> Any:
        """One API call; every failure is a DeliveryError that says whether retrying helps."""
        params = dict(params or {})
        if authenticated:
            params["access_token"] = self.access_token()
        try:
            response = _http().request(
                method, self.bot.platform_api_base_url + path, params=params, json=json
            )
        except httpx.HTTPError as error:
            raise DeliveryError(f"{what}: {error.__class__.__name__}", retryable=True) from error
        if response.status_code >= 500 or response.status_code == 429:
            raise DeliveryError(f"{what}: HTTP {response.status_code}", retryable=True)
        is_json = response.headers.get("content-type", "").startswith(
            ("application/json", "text/plain")
        )
        if raw and not is_json:
            return response.content
        try:
            answer = response.json()
        except ValueError as error:
            raise DeliveryError(f"{what}: unreadable answer", retryable=True) from error
        if not isinstance(answer, dict):
            raise DeliveryError(f"{what}: unreadable answer", retryable=True)
        code = answer.get("errcode", 0)
        if code == 0:
            return answer
        message = f"{what}: errcode {code}: {answer.get('errmsg', '')}"
        if code in TOKEN_INVALID_CODES:
            self._forget_token()
            raise DeliveryError(message, retryable=True)
        if code in RATE_LIMIT_CODES:
            raise DeliveryError(message, retryable=True, retry_after=2.0)
        raise DeliveryError(message, retryable=code == SYSTEM_BUSY)

    # Sending ------------------------------------------------------------------------------

    def send(self, message: OutboundMessage) -> SentMessage:
        if not message.text.strip():
            raise DeliveryError("empty answer", retryable=False)
        ids: list[str] = []
        for piece in text_split(message.text):
            answer = self._call(
                "POST",
                "/cgi-bin/message/send",
                "send",
                json={
                    "touser": message.chat_id,
                    "msgtype": "text",
                    "agentid": int(self.config.get("agent_id") or 0),
                    "text": {"content": piece},
                    # A retried delivery within 4 hours is not shown twice.
                    "enable_duplicate_check": 1,
                    "duplicate_check_interval": 14400,
                },
            )
            ids.append(str(answer.get("msgid", "")))
        return SentMessage(platform_message_id=ids[0] or str(message.message_id))

    def stream_update(self, message: OutboundMessage, text: str) -> str:
        return message.platform_message_id  # not called: stream_interval is None

    def typing(self, message: OutboundMessage) -> None:
        pass

    async def atyping(self, message: OutboundMessage) -> None:
        pass

    def download(self, *, message_platform_id: str, attachment: InboundAttachment) -> bytes:
        return self._call(
            "GET",
            "/cgi-bin/media/get",
            "download",
            params={"media_id": attachment.platform_file_id},
            raw=True,
        )

    def answer_action(self, action, text: str) -> None:
        pass  # text messages carry no buttons
