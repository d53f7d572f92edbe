"""`manage.py onboard` for WeCom (企业微信): what the wizard asks, how the bot is connected, what
the operator sets on the platform's side and what the first event proves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.bots.platforms.onboarding import (
    Answers,
    FirstEvent,
    PlatformSetup,
    Question,
)

if TYPE_CHECKING:
    from apps.bots.models import Bot

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


SETUP = PlatformSetup(
    platform="wecom",
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
)
