"""`manage.py onboard`: what the set-up wizard asks, and the writes it makes.

The command (apps/bots/management/commands/onboard.py) only asks and prints. What it
asks is data: the questions below, one small table per platform (`PLATFORM_SETUPS`:
its questions → the bot fields they fill, how the bot is connected, what the operator
must set on the platform's side). A new platform is one more entry. Rows are created
through the API's serializers and services, so validation, credential checks and the
audit log are the same as in the admin and the REST API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError as ModelValidationError
from django.db import models, transaction
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.audit.services import audit_config_change, snapshot
from apps.bots.choices import ConnectionMode, Platform
from apps.bots.models import Bot, UnprocessedEvent
from apps.bots.serializers import BotSerializer
from apps.bots.services import bot_create, webhook_url
from apps.providers.models import DEFAULT_SYSTEM_PROMPT, ModelProfile, Provider
from apps.providers.serializers import ModelProfileSerializer, ProviderSerializer

Answers = dict[str, Any]


@dataclass(frozen=True)
class Question:
    """One thing the wizard asks: the field it fills, its flag, how to ask it."""

    field: str  # the serializer field it fills (or a wizard setting: see `setting`)
    prompt: str | Promise
    flag: str = ""  # the --flag of --non-interactive; "--<field>" when empty
    secret: bool = False  # read without echo; may also come from $ONBOARD_<FIELD>
    required: bool = True
    default: str | Callable[[Answers], str] = ""
    choices: tuple[str, ...] = ()
    # Asked only when this is true of the answers so far (e.g. webhook mode only).
    when: Callable[[Answers], bool] | None = None
    setting: bool = False  # not a field of the row: the wizard uses it itself

    @property
    def option(self) -> str:
        return self.flag or "--" + self.field.replace("_", "-")

    @property
    def dest(self) -> str:
        return self.option.removeprefix("--").replace("-", "_")

    def default_for(self, answers: Answers) -> str:
        return self.default(answers) if callable(self.default) else self.default

    def asked(self, answers: Answers) -> bool:
        return self.when is None or self.when(answers)


@dataclass(frozen=True)
class PlatformSetup:
    """One platform in the wizard: its questions, how it is connected, how it is verified."""

    platform: Platform
    questions: tuple[Question, ...] = ()
    # Connect the saved bot (webhook or long polling); returns lines to print.
    connect: Callable[[Bot, Answers], list[str]] | None = None
    # What the operator must do on the platform's side, printed after connecting.
    instructions: Callable[[Bot, Answers], list[str]] | None = None
    # Whether the wizard waits for the bot's first inbound event to verify the set-up.
    waits_for_first_event: bool = True
    # What the first event proves, given how it arrived.
    verified: Callable[[Bot, FirstEvent], list[str]] | None = None


class SetupFailed(Exception):
    """A step could not be done: `errors` maps fields (or "" for the whole step) to reasons.

    `can_save_anyway` is true when the other side could not be asked (nothing refused).
    """

    def __init__(self, errors: dict[str, list[str]], *, can_save_anyway: bool = False):
        super().__init__(
            "; ".join(f"{k}: {' '.join(v)}" if k else " ".join(v) for k, v in errors.items())
        )
        self.errors = errors
        self.can_save_anyway = can_save_anyway


# The questions ------------------------------------------------------------------------


def _default_connection_mode() -> str:
    return (
        ConnectionMode.WEBHOOK
        if settings.PUBLIC_BASE_URL.startswith("https://")
        else ConnectionMode.PERSISTENT
    )


def _webhook_mode(answers: Answers) -> bool:
    return answers.get("connection_mode") == ConnectionMode.WEBHOOK


CONNECTION_MODE = Question(
    "connection_mode",
    _(
        "Connection mode: “webhook” (the platform calls this server's public https URL) "
        "or “persistent” (no public URL needed; `manage.py run_connectors` keeps the "
        "connection)"
    ),
    choices=tuple(ConnectionMode.values),
    default=lambda answers: _default_connection_mode(),
)
WEBHOOK_URL = Question(
    "webhook_url",
    _("The public https URL the platform should call"),
    default=lambda answers: answers.get("default_webhook_url", ""),
    when=_webhook_mode,
    setting=True,
)

PROVIDER_QUESTIONS = (
    Question("name", _("Name of the model provider"), flag="--provider-name", default="OpenAI"),
    Question(
        "base_url",
        _("Its OpenAI-compatible API root, including /v1"),
        default="https://api.openai.com/v1",
    ),
    Question(
        "api_key",
        _("Its API key (Enter for none, e.g. a local server)"),
        secret=True,
        required=False,
    ),
)
PROFILE_QUESTIONS = (
    Question("model", _("The model to answer with (e.g. gpt-4o-mini)")),
    Question(
        "name",
        _("Name of the model profile"),
        flag="--profile-name",
        default=lambda answers: answers.get("model", ""),
    ),
)


# Telegram -----------------------------------------------------------------------------


def _telegram_connect(bot: Bot, answers: Answers) -> list[str]:
    from apps.bots.platforms.telegram.adapter import TelegramAdapter

    adapter = TelegramAdapter(bot)
    try:
        if bot.connection_mode == ConnectionMode.WEBHOOK:
            url = answers["webhook_url"]
            if not url.startswith("https://"):
                raise SetupFailed(
                    {
                        "webhook_url": [
                            gettext(
                                "Telegram only calls https URLs; got %(url)s. Give the public "
                                "https URL, or choose the persistent connection mode."
                            )
                            % {"url": url}
                        ]
                    }
                )
            adapter.set_webhook(url)
            return [
                gettext("Telegram webhook set to %(url)s, with its secret token and the commands.")
                % {"url": url}
            ]
        adapter.prepare_polling()
    except Exception as error:  # noqa: BLE001 - PTB's TelegramError, network errors: reported
        raise SetupFailed({"": [_telegram_error(error)]}) from error
    return [
        gettext(
            "Telegram long polling prepared (webhook removed, commands registered). "
            "`manage.py run_connectors` (started by `make run`) receives the messages."
        )
    ]


def _telegram_error(error: Exception) -> str:
    return gettext("Telegram refused the set-up: %(error)s") % {
        "error": f"{error.__class__.__name__}: {error}"
    }


def _telegram_instructions(bot: Bot, answers: Answers) -> list[str]:
    return [
        gettext("Send the bot a message in Telegram: https://t.me/%(username)s")
        % {"username": bot.platform_username or "…"}
    ]


def _telegram_verified(bot: Bot, event: FirstEvent) -> list[str]:
    if bot.connection_mode == ConnectionMode.WEBHOOK:
        lines = [gettext("Telegram reached the webhook URL with the bot's secret token.")]
    else:
        lines = [gettext("Long polling received the update.")]
    return lines


# Feishu / Lark ------------------------------------------------------------------------

FEISHU_SCOPES = (
    ("im:message", _("send and reply as the bot, update cards")),
    ("im:message.p2p_msg:readonly", _("receive direct messages")),
    ("im:message.group_at_msg:readonly", _("receive group messages that @mention the bot")),
    ("im:resource", _("download images, files and voice messages")),
)
FEISHU_EVENT = "im.message.receive_v1"
FEISHU_CALLBACK = "card.action.trigger"


def _feishu_console(bot: Bot) -> str:
    return (
        "https://open.larksuite.com/app"
        if "larksuite" in bot.platform_api_base_url
        else "https://open.feishu.cn/app"
    )


def _feishu_connect(bot: Bot, answers: Answers) -> list[str]:
    if bot.connection_mode == ConnectionMode.PERSISTENT:
        return [
            gettext(
                "Feishu long connection: `manage.py run_connectors` (started by `make run`) "
                "opens it for this bot within a few seconds."
            )
        ]
    return []


def _feishu_instructions(bot: Bot, answers: Answers) -> list[str]:
    lines = [
        gettext("In the developer console, %(url)s → your app:") % {"url": _feishu_console(bot)},
        gettext("  1. Add features → Bot."),
        gettext("  2. Permissions & Scopes: add"),
        *(f"       {scope}  ({reason})" for scope, reason in FEISHU_SCOPES),
    ]
    if bot.connection_mode == ConnectionMode.WEBHOOK:
        url = answers["webhook_url"]
        lines += [
            gettext(
                "  3. Events & Callbacks → Event configuration: “Send events to developer "
                "server”, request URL:"
            ),
            f"       {url}",
            gettext("     then add the event “Receive messages” (%(event)s).")
            % {"event": FEISHU_EVENT},
            gettext(
                "  4. Callback configuration: the same URL, and add “Card action trigger” "
                "(%(callback)s) for the answer buttons."
            )
            % {"callback": FEISHU_CALLBACK},
            gettext(
                "  5. Encryption strategy: the Verification Token and Encrypt Key must be the "
                "ones you entered here."
            ),
        ]
    else:
        lines += [
            gettext(
                "  3. Events & Callbacks: choose “Receive events through persistent "
                "connection” for events and for callbacks (the console saves it only while "
                "`manage.py run_connectors` is connected)."
            ),
            gettext(
                "     Add the event “Receive messages” (%(event)s) and the callback “Card "
                "action trigger” (%(callback)s)."
            )
            % {"event": FEISHU_EVENT, "callback": FEISHU_CALLBACK},
        ]
    lines += [
        gettext("  Last: publish a version of the app (scopes apply once it is approved),"),
        gettext("  then send the bot a direct message in Feishu."),
    ]
    return lines


def _feishu_verified(bot: Bot, event: FirstEvent) -> list[str]:
    if bot.connection_mode == ConnectionMode.WEBHOOK:
        secured = (
            gettext("the Verification Token and the Encrypt Key's signature match")
            if bot.config.get("encrypt_key")
            else gettext("the Verification Token matches")
        )
        lines = [gettext("Feishu reached the request URL and %(secured)s.") % {"secured": secured}]
    else:
        lines = [gettext("The long connection delivered the event.")]
    lines.append(gettext("The event %(event)s is subscribed.") % {"event": FEISHU_EVENT})
    if event.chat_type == "group":
        scope = "im:message.group_at_msg:readonly"
    else:
        scope = "im:message.p2p_msg:readonly"
    if event.stored:
        lines.append(gettext("The scope %(scope)s is granted.") % {"scope": scope})
    return lines


# WeCom (企业微信) ----------------------------------------------------------------------

WECOM_ADMIN = "https://work.weixin.qq.com/wework_admin/frame#apps"
WECOM_WEBHOOK_URL = Question(  # WeCom only calls a URL: no persistent mode to choose
    "webhook_url",
    _("The public URL WeCom should call (http or https)"),
    default=lambda answers: answers.get("default_webhook_url", ""),
    setting=True,
)


def _wecom_instructions(bot: Bot, answers: Answers) -> list[str]:
    return [
        gettext("In the WeCom admin console, %(url)s → your self-built app:")
        % {"url": WECOM_ADMIN},
        gettext("  1. Receive Messages → Set API Receive (接收消息 → 设置API接收):"),
        gettext("       URL: %(url)s") % {"url": answers["webhook_url"]},
        gettext("       Token and EncodingAESKey: exactly the ones you entered here."),
        gettext(
            "     WeCom checks the URL when you save (this server must be running and reachable)."
        ),
        gettext(
            "  2. Trusted IPs (企业可信IP): add this server's public IP, or WeCom refuses "
            "the answers it sends."
        ),
        gettext("  3. Visible range (可见范围): include the people who may chat with the app."),
        gettext("  Then send the app a message in WeCom."),
    ]


def _wecom_verified(bot: Bot, event: FirstEvent) -> list[str]:
    return [
        gettext(
            "WeCom reached the URL, and the message's signature matched your Token and it "
            "decrypted with your EncodingAESKey."
        )
    ]


FEISHU_LARK_BASE_URL = Question(
    "api_base_url",
    _(
        "Feishu or Lark? Enter for Feishu (https://open.feishu.cn); "
        "https://open.larksuite.com for Lark"
    ),
    required=False,
)

# The platform table: what each platform asks, fills and checks. -----------------------

PLATFORM_SETUPS: dict[str, PlatformSetup] = {
    Platform.TELEGRAM: PlatformSetup(
        platform=Platform.TELEGRAM,
        questions=(
            Question(
                "telegram_token",
                _("The bot's token from @BotFather (like 123456789:AA…)"),
                secret=True,
            ),
            Question(
                "api_base_url",
                _("Bot API base URL (Enter for https://api.telegram.org)"),
                required=False,
            ),
            CONNECTION_MODE,
            WEBHOOK_URL,
        ),
        connect=_telegram_connect,
        instructions=_telegram_instructions,
        verified=_telegram_verified,
    ),
    Platform.FEISHU: PlatformSetup(
        platform=Platform.FEISHU,
        questions=(
            Question("feishu_app_id", _("App ID (cli_…, under Credentials & Basic Info)")),
            Question("feishu_app_secret", _("App Secret"), secret=True),
            FEISHU_LARK_BASE_URL,
            CONNECTION_MODE,
            Question(
                "feishu_verification_token",
                _("Verification Token (Events & Callbacks → Encryption strategy)"),
                secret=True,
                when=_webhook_mode,
            ),
            Question(
                "feishu_encrypt_key",
                _("Encrypt Key, same page (recommended; Enter for none)"),
                secret=True,
                required=False,
                when=_webhook_mode,
            ),
            WEBHOOK_URL,
        ),
        connect=_feishu_connect,
        instructions=_feishu_instructions,
        verified=_feishu_verified,
    ),
    Platform.WECOM: PlatformSetup(
        platform=Platform.WECOM,
        questions=(
            Question("wecom_corp_id", _("Corp ID (My Company → Company Info, 企业ID)")),
            Question("wecom_agent_id", _("The self-built app's AgentId")),
            Question("wecom_secret", _("The app's Secret"), secret=True),
            Question("wecom_token", _("Receive Messages → Set API Receive: Token"), secret=True),
            Question(
                "wecom_encoding_aes_key",
                _("Same page: EncodingAESKey (43 characters)"),
                secret=True,
            ),
            Question(
                "api_base_url",
                _("API base URL (Enter for https://qyapi.weixin.qq.com)"),
                required=False,
            ),
            WECOM_WEBHOOK_URL,
        ),
        instructions=_wecom_instructions,
        verified=_wecom_verified,
    ),
    Platform.WEB: PlatformSetup(platform=Platform.WEB, waits_for_first_event=False),
}


BOT_QUESTIONS = (
    Question(
        "platform",
        _(
            "Platform: “telegram”, “feishu” (Feishu / Lark), “wecom” (WeCom, 企业微信) or "
            "“web” (the built-in web chat)"
        ),
        choices=tuple(PLATFORM_SETUPS),
    ),
    Question("name", _("Name of the bot"), flag="--bot-name", default="Assistant"),
)


def platform_questions() -> list[Question]:
    """Every question of every platform once (by flag): the command's flags."""
    seen: dict[str, Question] = {}
    for setup in PLATFORM_SETUPS.values():
        for question in setup.questions:
            seen.setdefault(question.option, question)
    return list(seen.values())


# The writes ---------------------------------------------------------------------------


def _errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's or Django's error detail as {field: [messages]} ("" for the whole step)."""
    if isinstance(detail, dict):
        errors: dict[str, list[str]] = {}
        for name, value in detail.items():
            key = "" if name in ("non_field_errors", "__all__") else name
            for inner_key, messages in _errors(value).items():
                errors.setdefault(key or inner_key, []).extend(messages)
        return errors
    if isinstance(detail, (list, tuple)):
        return {"": [str(item) for item in detail]}
    return {"": [str(detail)]}


_Row = TypeVar("_Row", bound=models.Model)


@transaction.atomic
def _create(
    serializer_class: type[serializers.Serializer], data: Answers, save_new: Callable[..., _Row]
) -> _Row:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        errors = _errors(serializer.errors)
        can_save_anyway = "save_anyway" in errors
        errors.pop("save_anyway", None)
        raise SetupFailed(errors, can_save_anyway=can_save_anyway)
    try:
        instance = save_new(serializer)
    except ModelValidationError as error:
        detail = error.message_dict if hasattr(error, "error_dict") else error.messages
        raise SetupFailed(_errors(detail)) from error
    audit_config_change(request=None, instance=instance, before=None, action="create")
    return instance


def onboard_provider_create(*, data: Answers) -> Provider:
    """Create a provider as the API does: its key is checked with the provider (audited)."""
    return _create(ProviderSerializer, data, lambda serializer: serializer.save())


def onboard_profile_create(*, data: Answers) -> ModelProfile:
    """Create a model profile as the API does (audited); the default system prompt if none."""
    return _create(
        ModelProfileSerializer,
        {"system_prompt": DEFAULT_SYSTEM_PROMPT, **data},
        lambda serializer: serializer.save(),
    )


def onboard_bot_create(*, data: Answers) -> Bot:
    """Create a bot as the API does: its platform credentials are checked (audited)."""
    return _create(BotSerializer, data, lambda serializer: bot_create(**serializer.validated_data))


@transaction.atomic
def onboard_profile_model_change(*, profile: ModelProfile, model: str) -> ModelProfile:
    """Point a profile at another model, as the API's update does (audited)."""
    before = snapshot(profile)
    serializer = ModelProfileSerializer(profile, data={"model": model}, partial=True)
    if not serializer.is_valid():
        raise SetupFailed(_errors(serializer.errors))
    profile = serializer.save()
    audit_config_change(request=None, instance=profile, before=before, action="update")
    return profile


def bot_connect(*, bot: Bot, answers: Answers) -> list[str]:
    """Connect a new bot to its platform (webhook, long polling); lines saying what was done."""
    setup = PLATFORM_SETUPS[bot.platform]
    return setup.connect(bot, answers) if setup.connect else []


def bot_instructions(*, bot: Bot, answers: Answers) -> list[str]:
    """What the operator must do on the platform's side, and how to reach the bot."""
    setup = PLATFORM_SETUPS[bot.platform]
    return setup.instructions(bot, answers) if setup.instructions else []


def web_chat_url(*, bot: Bot) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("web-chat", kwargs={"bot_id": bot.pk})


def default_webhook_url(*, bot: Bot) -> str:
    return webhook_url(bot) or ""


@dataclass(frozen=True)
class FirstEvent:
    """The first thing a platform delivered for a bot: a stored message, or an unusable event."""

    stored: bool
    chat_id: str = ""
    chat_type: str = ""
    text: str = ""
    reason: str = ""  # why an unprocessed event could not be used


def first_event_get(*, bot: Bot) -> FirstEvent | None:
    """The bot's first inbound message or kept-unprocessed event, if any arrived yet."""
    from apps.conversations.choices import Direction
    from apps.conversations.models import Message

    message = (
        Message.objects.filter(bot=bot, direction=Direction.IN)
        .select_related("conversation")
        .order_by("id")
        .first()
    )
    if message is not None:
        return FirstEvent(
            stored=True,
            chat_id=message.conversation.chat_id,
            chat_type=message.conversation.chat_type,
            text=message.text,
        )
    event = UnprocessedEvent.objects.filter(bot=bot).order_by("id").first()
    if event is not None:
        return FirstEvent(stored=False, reason=event.reason)
    return None


def first_event_wait(*, bot: Bot, seconds: float, poll_seconds: float = 1.0) -> FirstEvent | None:
    """Wait up to `seconds` for the bot's first event; None when none came."""
    deadline = time.monotonic() + seconds
    while True:
        event = first_event_get(bot=bot)
        if event is not None or time.monotonic() >= deadline:
            return event
        time.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))


def first_event_verified(*, bot: Bot, event: FirstEvent) -> list[str]:
    """What the first event proves about the set-up, one line each."""
    setup = PLATFORM_SETUPS[bot.platform]
    return setup.verified(bot, event) if setup.verified else []


def profile_test_turn(*, profile: ModelProfile) -> tuple[str, str]:
    """One real turn through the profile alone: (its reply, "") or ("", the error)."""
    from apps.providers.services import profile_probe

    result = profile_probe(profile=profile)
    if not result.ok:
        return "", result.error or gettext("the answer was cut off")
    return result.reply, ""


def chat_test_message_send(*, bot: Bot, chat_id: str, chat_type: str, text: str) -> str:
    """Send `text` to a chat as the bot (recorded in its conversation); "" or the error."""
    from apps.conversations.choices import MessageStatus
    from apps.conversations.services.delivery import notice_send

    message = notice_send(bot=bot, chat_id=chat_id, chat_type=chat_type or "private", text=text)
    if message.status == MessageStatus.DELIVERED:
        return ""
    if message.status == MessageStatus.ANSWERED:
        return gettext("not sent yet (%(error)s); the workers will retry it") % {
            "error": message.error or "…"
        }
    return message.error or gettext("not sent")
