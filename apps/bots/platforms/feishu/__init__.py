"""Feishu / Lark (Open Platform through lark-oapi): webhook events or the long connection."""

from django.utils.translation import gettext_lazy as _

from apps.bots.platforms.base import ConfigField, PlatformSpec

PLATFORM = PlatformSpec(
    name="feishu",
    label=_("Feishu / Lark"),
    adapter="apps.bots.platforms.feishu.adapter.FeishuAdapter",  # lark-oapi: seconds to import
    onboarding="apps.bots.platforms.feishu.onboarding.SETUP",
    looks_up_sender_names=True,  # events carry open_ids; names need the contact API
    default_api_base_url="https://open.feishu.cn",
    connector="apps.bots.platforms.feishu.connector.FeishuConnector",
    webhook_reply="apps.bots.platforms.feishu.reply.webhook_reply",
    config=(
        ConfigField(
            key="app_id",
            label=_("Feishu app ID"),
            help_text=_("Feishu: App ID."),
            required=True,
            credential=True,
            max_length=64,
        ),
        ConfigField(
            key="app_secret",
            label=_("Feishu app secret"),
            help_text=_("Feishu: App Secret."),
            secret=True,
            required=True,
            credential=True,
        ),
        ConfigField(
            key="verification_token",
            label=_("Feishu verification token"),
            help_text=_("Feishu: Verification Token (event subscription)."),
            secret=True,
        ),
        ConfigField(
            key="encrypt_key",
            label=_("Feishu encrypt key"),
            help_text=_("Feishu: Encrypt Key (event subscription), if set there."),
            secret=True,
        ),
    ),
    config_description=_(
        "From the Feishu / Lark developer console: Credentials &amp; Basic Info, "
        "and Events &amp; Callbacks → Encryption strategy."
    ),
    credentials_refused=_(
        "Feishu / Lark refused the app ID or secret (%(reason)s). Copy them again "
        "from the developer console."
    ),
)
