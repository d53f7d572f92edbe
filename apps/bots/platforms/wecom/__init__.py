"""WeCom (企业微信) self-built app callbacks: encrypted XML in, the message API out."""

from django.utils.translation import gettext_lazy as _

from apps.bots.platforms.base import ConfigField, PlatformSpec

PLATFORM = PlatformSpec(
    name="wecom",
    label=_("WeCom (企业微信)"),
    adapter="apps.bots.platforms.wecom.adapter.WeComAdapter",
    onboarding="apps.bots.platforms.wecom.onboarding.SETUP",
    default_api_base_url="https://qyapi.weixin.qq.com",
    webhook_reply="apps.bots.platforms.wecom.reply.webhook_reply",
    url_check=True,
    config=(
        ConfigField(
            key="corp_id",
            label=_("WeCom corp ID"),
            help_text=_("WeCom: My Company → Company Info → Corp ID (企业ID)."),
            required=True,
            credential=True,
            max_length=64,
        ),
        ConfigField(
            key="agent_id",
            label=_("WeCom agent ID"),
            help_text=_("WeCom: the self-built app's AgentId."),
            required=True,
            max_length=32,
        ),
        ConfigField(
            key="secret",
            label=_("WeCom app secret"),
            help_text=_("WeCom: the self-built app's Secret."),
            secret=True,
            required=True,
            credential=True,
        ),
        ConfigField(
            key="token",
            label=_("WeCom callback token"),
            help_text=_("WeCom: Receive Messages → Token (signs each callback)."),
            secret=True,
            required=True,
            max_length=64,
        ),
        ConfigField(
            key="encoding_aes_key",
            label=_("WeCom EncodingAESKey"),
            help_text=_("WeCom: Receive Messages → EncodingAESKey (43 characters)."),
            secret=True,
            required=True,
            max_length=43,
        ),
    ),
    config_description=_(
        "From the WeCom admin console: My Company (corp ID), and the self-built app's "
        "page (AgentId, Secret, and Receive Messages → Set API Receive: Token, EncodingAESKey)."
    ),
    credentials_refused=_(
        "WeCom refused the corp ID or app secret (%(reason)s). Copy them again from the "
        "WeCom admin console."
    ),
)
