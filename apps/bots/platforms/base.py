"""The only interface the rest of the code sees of a chat platform.

A platform package turns the platform's wire format into `InboundMessage`s and
sends `OutboundMessage`s. Adding a platform means one new package, declared with a
`PlatformSpec` in its `__init__.py` and named in the registry (`platforms/__init__.py`).
This module imports no adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from apps.bots.models import Bot


@dataclass(frozen=True)
class ConfigField:
    """One setting or credential of a platform, kept in the bot's encrypted `config`.

    The admin form, the API and validation all read these (apps/bots/config.py); the
    admin form and the API name the field "<platform>_<key>", e.g. telegram_token.
    """

    key: str
    label: Any
    help_text: Any = ""
    secret: bool = False  # write-only: never shown or returned, masked in the audit log
    required: bool = False
    credential: bool = False  # a change is checked with the platform before saving
    generated: bool = False  # made up (a random token) when left empty; not on the add page
    max_length: int = 500


@dataclass(frozen=True)
class PlatformSpec:
    """What the rest of the code may know of a platform without importing its SDK.

    Each platform package's `__init__.py` declares one (it must stay light: no SDK
    imports); the registry in `apps.bots.platforms` collects them.
    """

    name: str  # the value stored in Bot.platform
    label: Any  # shown in the admin (lazy translation)
    adapter: str  # import path of the adapter class
    default_api_base_url: str = ""  # where the platform's API is when the bot names none
    connector: str = ""  # import path of the persistent-mode connector, "" for none
    webhook: bool = True  # whether the platform calls us at a webhook URL
    # Import path of a context manager that collects what a webhook call answers
    # (a challenge echo, a toast); "" answers {"ok": true, "stored": n}.
    webhook_reply: str = ""
    # Whether the platform checks the webhook URL with a GET (answered by the adapter's
    # handshake(query=...)); other platforms' GETs are 405 without a database query.
    url_check: bool = False
    # The platform's settings and credentials (Bot.config), in the order forms show them.
    config: tuple[ConfigField, ...] = ()
    config_description: Any = ""  # where to find them, shown above them in the admin
    # What the admin and the API say when the platform refuses the credentials
    # (%(reason)s is the platform's answer, secrets masked).
    credentials_refused: Any = ""
    # Import path of its `manage.py onboard` set-up (a PlatformSetup), "" for none.
    onboarding: str = ""
    # Whether its messages name their sender by id only and the adapter can look the
    # name up (`adapter.sender_name(sender_id)`), for staff to see who wrote.
    looks_up_sender_names: bool = False


@dataclass(frozen=True)
class InboundAttachment:
    """Media that came with a message; the worker downloads it through the adapter."""

    kind: str  # "image" | "audio" | "file"
    platform_file_id: str
    mime_type: str = ""
    file_name: str = ""
    size: int | None = None


@dataclass(frozen=True)
class InboundMessage:
    """A user's message, platform-neutral."""

    external_id: str  # the platform's event/update id: ingest dedups on it
    chat_id: str
    chat_type: str  # "private" | "group"
    sender_id: str
    sender_name: str
    text: str  # with any @mention of the bot removed
    platform_message_id: str = ""  # what a reply quotes
    # Group chats: whether the message is addressed to the bot (the adapter knows
    # the platform's mention syntax; bots.services.inbound_accept applies the policy).
    mentioned: bool = False
    reply_to_bot: bool = False
    command: str = ""  # "start" | "help" | "reset" | "model" | "" (a command addressed to us)
    edited: bool = False
    attachments: tuple[InboundAttachment, ...] = ()
    # Content the bot cannot use yet and nothing else ("sticker", "video", ...): stored
    # with a description as its text and answered with a short notice, never dropped.
    unsupported: str = ""


@dataclass(frozen=True)
class InboundAction:
    """A button press on one of our answers (feedback or regenerate)."""

    external_id: str  # dedup key (callback query id / event id)
    chat_id: str
    sender_id: str
    action: str  # "helpful" | "not_helpful" | "regenerate"
    message_id: int  # our Message id the button was attached to
    callback_id: str = ""  # what answer_action() acknowledges


@dataclass(frozen=True)
class ChatMoved:
    """The platform moved a chat to a new id (a Telegram group became a supergroup).

    Adapters report it; the conversations service moves the bot's conversations along.
    """

    old_chat_id: str
    new_chat_id: str


@dataclass(frozen=True)
class IdentityLearned:
    """The bot's own username / open id on the platform, as the adapter just learned it.

    Adapters report it; `bots.services.bot_identity_store` keeps it on the bot.
    """

    username: str


# What an adapter's parse() returns: messages, button presses, and facts for services.
InboundItem = InboundMessage | InboundAction | ChatMoved | IdentityLearned


@dataclass(frozen=True)
class OutboundMessage:
    """An answer to deliver into a chat."""

    conversation_id: int
    message_id: int
    chat_id: str
    text: str
    reply_to_platform_message_id: str = ""
    # Set when streaming already put a message in the chat: send() then finalizes
    # that message (full text, buttons) instead of sending a new one.
    platform_message_id: str = ""
    # Answers from the model carry helpful / not helpful / regenerate buttons.
    with_actions: bool = False


@dataclass(frozen=True)
class SentMessage:
    platform_message_id: str


class WebhookRejected(Exception):
    """A webhook call that must not be stored. `status` is the 4xx to answer."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.status = status


class EventNotUnderstood(Exception):
    """An authentic call whose content we cannot use: kept as an unprocessed event, answered 2xx.

    Only inauthentic calls and bodies that are not JSON at all are refused (WebhookRejected);
    anything else the platform really sent is kept, so nothing is lost in silence.
    """


class DeliveryError(Exception):
    """Sending failed. `retryable` says whether trying again can help.

    `chat_moved` says the chat has a new id: the service moves the conversation first.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        chat_moved: ChatMoved | None = None,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.chat_moved = chat_moved


# What the model is told when a message also carried content it cannot be shown.
NOT_SHOWN_NOTE = "[Also sent: {what}, which cannot be shown to you.]"


# What ingest accepts from any adapter --------------------------------------------------

ID_MAX_LENGTH = 128  # the id columns
NAME_MAX_LENGTH = 200
TEXT_MAX_LENGTH = 100_000  # far above any platform's message limit
CHAT_TYPES = ("private", "group")


def inbound_clean(item: InboundItem) -> InboundItem:
    """The item with every string safe to store and show, or EventNotUnderstood.

    Runs once at ingest, whatever the platform: ids must be non-empty strings that fit
    their columns; text must be text; NUL characters (PostgreSQL refuses them) and lone
    surrogates are removed; a display name that is not a string becomes one or "".
    """
    if isinstance(item, ChatMoved):
        return ChatMoved(
            old_chat_id=_clean_id(item.old_chat_id, "old_chat_id"),
            new_chat_id=_clean_id(item.new_chat_id, "new_chat_id"),
        )
    if isinstance(item, IdentityLearned):
        return IdentityLearned(username=_clean_string(item.username, ID_MAX_LENGTH).strip())
    ids: dict[str, Any] = {
        name: _clean_id(getattr(item, name), name)
        for name in ("external_id", "chat_id", "sender_id")
    }
    if isinstance(item, InboundAction):
        if not isinstance(item.message_id, int) or not 0 < item.message_id < 2**63:
            raise EventNotUnderstood("the button's message id is not an id")
        return replace(item, **ids, callback_id=_clean_string(item.callback_id, ID_MAX_LENGTH))
    if item.chat_type not in CHAT_TYPES:
        raise EventNotUnderstood(f"unknown chat type {item.chat_type!r}")
    if not isinstance(item.text, str):
        raise EventNotUnderstood(f"the text is a {type(item.text).__name__}, not text")
    platform_message_id = item.platform_message_id
    if platform_message_id:
        platform_message_id = _clean_id(platform_message_id, "platform_message_id")
    return replace(
        item,
        **ids,
        platform_message_id=platform_message_id,
        sender_name=clean_name(item.sender_name),
        text=_clean_string(item.text, TEXT_MAX_LENGTH),
        command=_clean_string(item.command, 32),
        unsupported=_clean_string(item.unsupported, 32),
        attachments=tuple(_clean_attachment(attachment) for attachment in item.attachments),
    )


def _clean_string(value: Any, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. "\ud800" from JSON
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value[:limit]


def _clean_id(value: Any, name: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    cleaned = _clean_string(value, ID_MAX_LENGTH + 1).strip()
    if not cleaned or len(cleaned) > ID_MAX_LENGTH:
        raise EventNotUnderstood(f"{name} is missing or is not a usable id")
    return cleaned


def clean_name(value: Any) -> str:
    """A person's name as kept and shown: text, bounded, no control characters."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return _clean_string(value, NAME_MAX_LENGTH).strip()


def _clean_attachment(attachment: InboundAttachment) -> InboundAttachment:
    size = attachment.size
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < 2**62:
        size = None
    file_id = _clean_string(attachment.platform_file_id, 512)
    if not file_id:
        raise EventNotUnderstood("an attachment has no file id")
    return replace(
        attachment,
        platform_file_id=file_id,
        mime_type=_clean_string(attachment.mime_type, 100),
        file_name=_clean_string(attachment.file_name, 255),
        size=size,
    )


class PlatformAdapter(Protocol):
    """What a platform offers the pipeline.

    The methods below are synchronous. A platform whose SDK is asynchronous also
    offers `asend`, `astream_update`, `atyping` and `adownload` (same arguments,
    awaitable), which the turn engine prefers; otherwise the engine runs the
    synchronous ones in its I/O threads (see the `platform_*` helpers below).
    """

    bot: Bot

    # Read-only properties, so an adapter's plain class attribute (`stream_interval =
    # 1.0`, `typing_every = None`) satisfies them.
    @property
    def stream_interval(self) -> float | None:
        """Minimum seconds between streaming updates of one answer (None: the platform
        does not show answers while they stream; only send() is called)."""

    @property
    def typing_every(self) -> float | None:
        """Repeat typing() this often while no text is shown (None: once is enough)."""

    def verify(self, *, headers: dict[str, str], body: bytes, query: dict[str, str]) -> None:
        """Raise WebhookRejected unless the call really comes from the platform.

        `query` is the URL's query string (WeCom signs there; others ignore it).
        """

    def parse(self, *, body: bytes) -> list[InboundItem]:
        """What a webhook body carries (possibly nothing): messages, button presses, and
        facts for the services to write (ChatMoved, IdentityLearned). Writes nothing."""

    def send(self, message: OutboundMessage) -> SentMessage:
        """Deliver an answer, or finalize the streamed one; raise DeliveryError on failure."""

    def stream_update(self, message: OutboundMessage, text: str) -> str:
        """Show `text` (the answer so far) in the chat; return the platform message id.

        The first call sends a message (message.platform_message_id is empty), later
        calls edit it. Raise DeliveryError on failure; the pipeline then stops
        streaming and leaves the answer to send().
        """

    def typing(self, message: OutboundMessage) -> None:
        """Show that an answer is being written (best effort, never raises)."""

    def download(self, *, message_platform_id: str, attachment: InboundAttachment) -> bytes:
        """Fetch a user's media; raise DeliveryError on failure."""

    def answer_action(self, action: InboundAction, text: str) -> None:
        """Acknowledge a button press with a short notice (best effort)."""


@runtime_checkable
class SenderNames(Protocol):
    """An adapter whose platform names senders by id only, and can be asked their names
    (its PlatformSpec says `looks_up_sender_names`)."""

    def sender_name(self, sender_id: str) -> str:
        """The user's display name ("" when it has none); raise DeliveryError on failure."""


async def platform_send(adapter: PlatformAdapter, message: OutboundMessage) -> SentMessage:
    """`adapter.send` from the process loop."""
    if hasattr(adapter, "asend"):
        return await adapter.asend(message)
    from apps.core.aio import process_loop

    return await process_loop.blocking(adapter.send, message)


async def platform_stream_update(adapter: PlatformAdapter, message: OutboundMessage, text: str):
    """`adapter.stream_update` from the process loop."""
    if hasattr(adapter, "astream_update"):
        return await adapter.astream_update(message, text)
    from apps.core.aio import process_loop

    return await process_loop.blocking(adapter.stream_update, message, text)


async def platform_typing(adapter: PlatformAdapter, message: OutboundMessage) -> None:
    """`adapter.typing` from the process loop (best effort)."""
    if hasattr(adapter, "atyping"):
        await adapter.atyping(message)
        return
    from apps.core.aio import process_loop

    await process_loop.blocking(adapter.typing, message)


def answer_shown_key(answer_id: int) -> str:
    """Redis: the chat message (platform id) that shows answer `answer_id` while it streams.

    Written as soon as the platform returns the id, before anything else, so the turn
    that takes over from a lost worker finishes that message instead of sending another.
    """
    return f"assistant:streamed:{answer_id}"
