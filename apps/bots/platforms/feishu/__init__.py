"""Feishu / Lark (Open Platform through lark-oapi): webhook events or the long connection."""

from django.utils.translation import gettext_lazy as _

from apps.bots.platforms.base import PlatformSpec

PLATFORM = PlatformSpec(
    name="feishu",
    label=_("Feishu / Lark"),
    adapter="apps.bots.platforms.feishu.adapter.FeishuAdapter",  # lark-oapi: seconds to import
    default_api_base_url="https://open.feishu.cn",
    connector="apps.bots.platforms.feishu.connector.FeishuConnector",
    webhook_reply="apps.bots.platforms.feishu.reply.webhook_reply",
)
