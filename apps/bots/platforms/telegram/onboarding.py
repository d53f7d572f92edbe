"""`manage.py onboard` for Telegram: what the wizard asks, how the bot is connected, what
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
    SetupFailed,
)

if TYPE_CHECKING:
    from apps.bots.models import Bot


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


SETUP = PlatformSetup(
    platform="telegram",
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
)
