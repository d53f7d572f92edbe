"""Writes for bots: creating and changing them, and taking webhook calls."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.db import DataError, OperationalError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext, gettext_lazy

from apps.audit.services import audit_record
from apps.bots.choices import (
    AccessPolicy,
    EditedMessages,
    GroupTrigger,
    PairingStatus,
    UnprocessedStatus,
)
from apps.bots.config import config_validate
from apps.bots.models import Bot, PairingRequest, UnprocessedEvent
from apps.bots.platforms import adapter_for, platform_spec
from apps.bots.platforms.base import (
    EventNotUnderstood,
    IdentityLearned,
    InboundItem,
    InboundMessage,
    PlatformAdapter,
    WebhookRejected,
    inbound_clean,
)
from apps.bots.selectors import bot_config_get

logger = logging.getLogger(__name__)


def webhook_url(bot: Bot) -> str | None:
    """The URL the platform should call for this bot (None for the web chat)."""
    spec = platform_spec(bot.platform)
    if spec is None or not spec.webhook:
        return None
    path = reverse("webhook", kwargs={"platform": bot.platform, "bot_id": bot.pk})
    return settings.PUBLIC_BASE_URL + path


def bot_fill_defaults(bot: Bot) -> None:
    """Check the bot's config against its platform's schema and generate what an admin
    should not have to invent (a webhook secret). Raises ValidationError."""
    bot.config = config_validate(platform=bot.platform, values={}, current=bot.config or {})


@transaction.atomic
def bot_create(**fields: Any) -> Bot:
    """Create a bot, checking its platform config and generating its webhook secret."""
    bot = Bot(**fields)
    bot_fill_defaults(bot)
    bot.full_clean()
    bot.save()
    return bot


@transaction.atomic
def bot_update(*, bot: Bot, **fields: Any) -> Bot:
    """Change a bot's fields, keeping generated secrets in place."""
    for name, value in fields.items():
        setattr(bot, name, value)
    bot_fill_defaults(bot)
    bot.full_clean()
    bot.save()
    return bot


def webhook_handshake(*, bot_id, platform: str, query: dict[str, str]) -> str:
    """Answer a platform's URL check (a GET with a challenge, e.g. WeCom's echostr).

    Raises WebhookRejected: 404 for an unknown bot, 405 when its platform has no such
    check, 403 when the check is not authentic.
    """
    bot = bot_config_get(bot_id=bot_id)
    if bot is None or bot.platform != platform:
        raise WebhookRejected("no such bot", status=404)
    adapter = adapter_for(bot)
    if not hasattr(adapter, "handshake"):
        raise WebhookRejected("POST only", status=405)
    return adapter.handshake(query=query)


def webhook_receive(
    *,
    bot_id,
    platform: str,
    headers: dict[str, str],
    body: bytes,
    query: dict[str, str] | None = None,
) -> int:
    """Verify and parse one webhook call and ingest what it carries.

    Returns how many new messages were stored. Raises WebhookRejected (4xx) for a call
    that is not authentic or not JSON at all; an authentic call we cannot use is kept
    as an UnprocessedEvent and counts as received (the platform must not retry it).
    """
    bot = bot_config_get(bot_id=bot_id)
    if bot is None or bot.platform != platform:
        raise WebhookRejected("no such bot", status=404)
    adapter = adapter_for(bot)
    adapter.verify(headers=headers, body=body, query=query or {})
    return event_receive(bot=bot, body=body, adapter=adapter)


def event_receive(*, bot: Bot, body: bytes, adapter: PlatformAdapter | None = None) -> int:
    """Ingest one authentic event body (webhook, long polling or long connection).

    Returns how many new messages were stored; what cannot be used is kept as an
    UnprocessedEvent. Raises WebhookRejected only for a body that is not JSON, or with
    a 5xx status when it cannot be processed yet (the platform sends it again).
    """
    stored, not_understood = _receive(bot, adapter or adapter_for(bot), body)
    if not_understood is not None:
        unprocessed_event_record(bot=bot, body=body, reason=not_understood)
    return stored


def _receive(bot: Bot, adapter: PlatformAdapter, body: bytes) -> tuple[int, str | None]:
    """Parse and ingest an authentic body: (messages stored, why it was unusable or None)."""
    try:
        return inbound_receive(bot=bot, items=adapter.parse(body=body)), None
    except (WebhookRejected, OperationalError):
        raise  # not JSON, or the database is unavailable: the platform retries
    except EventNotUnderstood as error:
        return 0, str(error)
    except DataError as error:
        return 0, f"the database refused it: {error}"
    except Exception as error:  # noqa: BLE001 - an authentic event is kept, never lost to a bug
        logger.exception("reading a %s event of bot %s failed", bot.platform, bot.pk)
        return 0, f"could not be read: {error.__class__.__name__}: {error}"


def unprocessed_event_record(*, bot: Bot, body: bytes, reason: str) -> UnprocessedEvent:
    """Keep an authentic call we could not use, with why (shown in the admin)."""
    logger.warning("kept an unprocessed %s event of bot %s: %s", bot.platform, bot.pk, reason)
    return UnprocessedEvent.objects.create(
        bot=bot, platform=bot.platform, body=body, reason=reason[:2000]
    )


def unprocessed_event_replay(*, event: UnprocessedEvent, actor=None) -> UnprocessedEvent:
    """Process a kept event again (after a fix); it stays kept, with the new reason, if it fails.

    The event was authenticated when it arrived, so it is not verified again.
    """
    bot = Bot.objects.get(pk=event.bot_id)
    try:
        stored, not_understood = _receive(bot, adapter_for(bot), bytes(event.body))
    except WebhookRejected as error:
        stored, not_understood = 0, str(error)
    with transaction.atomic():
        if not_understood is not None:
            event.result = gettext("Replay failed: %(reason)s") % {"reason": not_understood}
        else:
            event.status = UnprocessedStatus.REPLAYED
            event.result = gettext("Replayed: %(count)d message(s) stored.") % {"count": stored}
        event.replayed_at = timezone.now()
        event.save(update_fields=["status", "result", "replayed_at"])
        audit_record(action="unprocessed_event.replay", actor=actor, target=event)
    return event


def unprocessed_event_dismiss(*, event: UnprocessedEvent, actor=None) -> UnprocessedEvent:
    """Mark a kept event as looked at and not needed."""
    with transaction.atomic():
        event.status = UnprocessedStatus.DISMISSED
        event.save(update_fields=["status"])
        audit_record(action="unprocessed_event.dismiss", actor=actor, target=event)
    return event


# Where received messages, button presses and moved chats go: the conversations app
# registers its service here as it starts (apps.conversations.apps), so this app, which
# conversations builds on, never imports it back.
InboundSink = Callable[..., bool]
_inbound_sink: InboundSink | None = None


def inbound_sink_set(*, sink: InboundSink) -> None:
    """Register `sink(*, bot, item) -> bool` (True: something new was stored)."""
    global _inbound_sink
    _inbound_sink = sink


def inbound_receive(*, bot: Bot, items: list[InboundItem]) -> int:
    """Ingest what a webhook or a persistent connection received; returns how many were new.

    Raises EventNotUnderstood when an item is unusable (before anything is stored).
    """
    if not bot.enabled:
        return 0
    items = [inbound_clean(item) for item in items]
    stored = 0
    for item in items:
        if isinstance(item, IdentityLearned):
            bot_identity_store(bot=bot, username=item.username)
        elif _inbound_sink is None:
            raise RuntimeError("conversations has not registered its inbound handler")
        else:
            stored += _inbound_sink(bot=bot, item=item)
    return stored


def bot_identity_store(*, bot: Bot, username: str) -> None:
    """Keep the bot's own username / open id that its adapter learned from the platform.

    A state write (update(): configuration's updated_at stays); the bot object passed
    in, possibly this process's cached one, learns it too, so it is asked for only once.
    """
    if username and username != bot.platform_username:
        Bot.objects.filter(pk=bot.pk).update(platform_username=username)
        bot.platform_username = username


def inbound_accept(*, bot: Bot, inbound: InboundMessage) -> InboundMessage | None:
    """Apply the bot's group trigger and edit policy: the message to answer, or None.

    Private chats are always answered. In groups the default is to answer only what
    is addressed to the bot (@mention, a reply to it, or a command for it).
    """
    if inbound.edited and bot.edited_messages == EditedMessages.IGNORE:
        return None
    if inbound.chat_type != "group":
        return inbound
    if bot.group_trigger == GroupTrigger.ALL:
        return inbound
    if bot.group_trigger == GroupTrigger.KEYWORD:
        keyword = bot.group_keyword.strip()
        text = inbound.text.lstrip()
        if keyword and text.lower().startswith(keyword.lower()):
            return replace(inbound, text=text[len(keyword) :].lstrip(" ,:，：") or text)
        return inbound if (inbound.mentioned or inbound.command) else None
    if inbound.mentioned or inbound.reply_to_bot or inbound.command:
        return inbound
    return None


PAIRING_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def access_check(*, bot: Bot, inbound: InboundMessage) -> str | Promise | None:
    """None when the sender may chat with the bot; otherwise the reply to give them.

    With the pairing policy an unknown user gets a one-time code; an admin approves
    it under Bots → Pairing requests.
    """
    if bot.access_policy == AccessPolicy.OPEN:
        return None
    if inbound.sender_id in {str(user_id) for user_id in bot.allowed_user_ids}:
        return None
    if bot.access_policy == AccessPolicy.ALLOWLIST:
        return gettext_lazy("Sorry, this assistant is only available to approved users.")
    request, _ = PairingRequest.objects.get_or_create(
        bot=bot,
        platform_user_id=inbound.sender_id,
        defaults={
            "display_name": inbound.sender_name,
            "code": "".join(secrets.choice(PAIRING_CODE_ALPHABET) for _ in range(8)),
        },
    )
    if request.status == PairingStatus.APPROVED:
        return None
    if request.status == PairingStatus.REJECTED:
        return gettext_lazy("Sorry, your request for access to this assistant was declined.")
    # Lazy, so that it is put in the language the bot replies in when it is sent.
    return format_lazy(
        gettext_lazy(
            "This assistant needs approval before it can answer you. Your access code is "
            "{code}: send it to an administrator, who can approve it in the admin under "
            "Pairing requests. Once approved, just write again."
        ),
        code=request.code,
    )


@transaction.atomic
def pairing_decide(*, request: PairingRequest, approve: bool, actor) -> PairingRequest:
    """Approve or reject a pairing request (audited)."""
    request.status = PairingStatus.APPROVED if approve else PairingStatus.REJECTED
    request.decided_at = timezone.now()
    request.decided_by = actor if getattr(actor, "is_authenticated", False) else None
    request.save(update_fields=["status", "decided_at", "decided_by"])
    audit_record(
        action="pairing.approve" if approve else "pairing.reject",
        actor=actor,
        target=request,
        changes={"platform_user_id": request.platform_user_id, "bot": str(request.bot_id)},
    )
    return request
