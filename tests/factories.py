"""Rows the tests build on: providers pointing at fakes, profiles, bots, chat messages;
and the heartbeat of a worker process that is not this one."""

from __future__ import annotations

import itertools

from django.utils import timezone

from apps.bots.choices import Platform
from apps.bots.models import Bot
from apps.bots.services import bot_create
from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Conversation, Message
from apps.core.liveness import PROCESSES_KEY
from apps.core.redis import get_redis
from apps.providers.models import ModelProfile, Provider

_numbers = itertools.count(1)


def make_provider(*, base_url: str, **fields) -> Provider:
    number = next(_numbers)
    return Provider.objects.create(
        name=fields.pop("name", f"provider-{number}"),
        base_url=base_url,
        api_key=fields.pop("api_key", "sk-test-key"),
        request_timeout=fields.pop("request_timeout", 10),
        **fields,
    )


def make_profile(*, provider: Provider, **fields) -> ModelProfile:
    number = next(_numbers)
    return ModelProfile.objects.create(
        name=fields.pop("name", f"profile-{number}"),
        provider=provider,
        model=fields.pop("model", "fake-model"),
        **fields,
    )


def make_telegram_bot(*, profile: ModelProfile | None, api_base_url: str, **fields) -> Bot:
    return bot_create(
        name=fields.pop("name", f"telegram-{next(_numbers)}"),
        platform=Platform.TELEGRAM,
        profile=profile,
        api_base_url=api_base_url,
        config={
            "token": fields.pop("telegram_token", "123456:TEST-token"),
            "webhook_secret": fields.pop("telegram_webhook_secret", ""),
        },
        **fields,
    )


def make_web_bot(*, profile: ModelProfile | None, **fields) -> Bot:
    return bot_create(
        name=fields.pop("name", f"web-{next(_numbers)}"),
        platform=Platform.WEB,
        profile=profile,
        **fields,
    )


def make_user_message(*, bot: Bot, chat_id: str, text: str = "hi", **fields) -> Message:
    """A user's message in a new private chat of `bot` (its conversation created too)."""
    conversation = Conversation.objects.create(bot=bot, chat_id=chat_id, chat_type="private")
    return Message.objects.create(
        conversation=conversation,
        bot=bot,
        direction=Direction.IN,
        author=Author.USER,
        sender_id=chat_id,
        text=text,
        **fields,
    )


def make_recorded_answer(*, bot: Bot, chat_id: str, text: str) -> Message:
    """An answer recorded (`answered`) but not yet delivered, to a user's message in a new
    private chat of `bot`."""
    asked = make_user_message(bot=bot, chat_id=chat_id, status=MessageStatus.ANSWERED)
    return Message.objects.create(
        conversation=asked.conversation,
        bot=bot,
        direction=Direction.OUT,
        author=Author.ASSISTANT,
        reply_to=asked,
        text=text,
        status=MessageStatus.ANSWERED,
        model_done_at=timezone.now(),
    )


def last_beat(process_id: str, seconds_ago: float) -> None:
    """Note a process's latest beat as it does (Redis's clock), `seconds_ago`."""
    seconds, microseconds = get_redis().time()
    get_redis().zadd(PROCESSES_KEY, {process_id: seconds + microseconds / 1e6 - seconds_ago})
