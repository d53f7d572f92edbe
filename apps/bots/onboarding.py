"""`manage.py onboard`: what the set-up wizard asks, and the writes it makes.

The command (apps/bots/management/commands/onboard.py) only asks and prints. What it
asks is data: the questions below, and per platform a `PlatformSetup` in the platform's
own package (`<platform>/onboarding.py`, named by its spec): its questions → the bot
fields they fill, how the bot is connected, what the operator must set on the
platform's side, what the first event proves. A new platform brings its own. Rows are created
through the API's serializers and services, so validation, credential checks and the
audit log are the same as in the admin and the REST API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError as ModelValidationError
from django.db import models, transaction
from django.urls import reverse
from django.utils.functional import lazy
from django.utils.module_loading import import_string
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.audit.services import audit_config_change, snapshot
from apps.bots.models import Bot, UnprocessedEvent
from apps.bots.platforms import platform_specs
from apps.bots.platforms.onboarding import (
    CONNECTION_MODE,
    WEBHOOK_URL,
    Answers,
    FirstEvent,
    PlatformSetup,
    Question,
    SetupFailed,
)
from apps.bots.serializers import BotSerializer
from apps.bots.services import bot_create, webhook_url
from apps.providers.models import DEFAULT_SYSTEM_PROMPT, ModelProfile, Provider
from apps.providers.serializers import ModelProfileSerializer, ProviderSerializer

__all__ = ["CONNECTION_MODE", "WEBHOOK_URL", "Answers", "FirstEvent", "Question", "SetupFailed"]


# The questions ------------------------------------------------------------------------


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


# The platform table: each platform package's onboarding.SETUP, by platform name. ------


def platform_setups() -> dict[str, PlatformSetup]:
    """Every registered platform's set-up (`PlatformSpec.onboarding`), by platform name."""
    return {
        name: import_string(spec.onboarding)
        for name, spec in platform_specs().items()
        if spec.onboarding
    }


PLATFORM_SETUPS: dict[str, PlatformSetup] = platform_setups()


def _platform_names() -> str:
    """“telegram” (Telegram), “feishu” (Feishu / Lark), … in the current language."""
    specs = platform_specs()
    return ", ".join(f"“{name}” ({specs[name].label})" for name in PLATFORM_SETUPS)


BOT_QUESTIONS = (
    Question(
        "platform",
        format_lazy(_("Platform: {platforms}"), platforms=lazy(_platform_names, str)()),
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
