"""`manage.py onboard` for Feishu / Lark: what the wizard asks, how the bot is connected, what
the operator sets on the platform's side and what the first event proves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.bots.choices import ConnectionMode
from apps.bots.platforms.onboarding import (
    CONNECTION_MODE,
    WEBHOOK_URL,
    Answers,
    FirstEvent,
    PlatformSetup,
    Question,
    webhook_mode,
)

if TYPE_CHECKING:
    from apps.bots.models import Bot

FEISHU_SCOPES = (
    ("im:message", _("send and reply as the bot, update cards")),
    ("im:message.p2p_msg:readonly", _("receive direct messages")),
    ("im:message.group_at_msg:readonly", _("receive group messages that @mention the bot")),
    ("im:resource", _("download images, files and voice messages")),
    ("contact:user.base:readonly", _("see the names of users who write (shown to staff)")),
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


FEISHU_LARK_BASE_URL = Question(
    "api_base_url",
    _(
        "Feishu or Lark? Enter for Feishu (https://open.feishu.cn); "
        "https://open.larksuite.com for Lark"
    ),
    required=False,
)


SETUP = PlatformSetup(
    platform="feishu",
    questions=(
        Question("feishu_app_id", _("App ID (cli_…, under Credentials & Basic Info)")),
        Question("feishu_app_secret", _("App Secret"), secret=True),
        FEISHU_LARK_BASE_URL,
        CONNECTION_MODE,
        Question(
            "feishu_verification_token",
            _("Verification Token (Events & Callbacks → Encryption strategy)"),
            secret=True,
            when=webhook_mode,
        ),
        Question(
            "feishu_encrypt_key",
            _("Encrypt Key, same page (recommended; Enter for none)"),
            secret=True,
            required=False,
            when=webhook_mode,
        ),
        WEBHOOK_URL,
    ),
    connect=_feishu_connect,
    instructions=_feishu_instructions,
    verified=_feishu_verified,
)
