import copy

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.bots.credentials import bot_credentials_check
from apps.bots.models import Bot
from apps.bots.services import webhook_url
from apps.core.credentials import credentials_check_or_400, save_anyway_field
from apps.core.serializers import StrictModelSerializer

SECRET_FIELDS = [
    "telegram_token",
    "telegram_webhook_secret",
    "feishu_app_secret",
    "feishu_verification_token",
    "feishu_encrypt_key",
]


class BotSerializer(StrictModelSerializer):
    """A bot. Saving new or changed platform credentials checks them with the platform."""

    save_anyway = save_anyway_field()
    webhook_url = serializers.SerializerMethodField()
    secrets_set = serializers.SerializerMethodField(
        help_text=_("Which secrets are set (their values are never returned).")
    )

    class Meta:
        model = Bot
        fields = [
            "id",
            "name",
            "platform",
            "enabled",
            "profile",
            "api_base_url",
            *SECRET_FIELDS,
            "feishu_app_id",
            "connection_mode",
            "group_trigger",
            "group_keyword",
            "edited_messages",
            "reply_language",
            "while_answering",
            "access_policy",
            "allowed_user_ids",
            "daily_token_budget",
            "user_daily_token_budget",
            "mask_personal_data",
            "platform_username",
            "connector_status",
            "connector_heartbeat_at",
            "secrets_set",
            "webhook_url",
            "save_anyway",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "platform_username",
            "connector_status",
            "connector_heartbeat_at",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {name: {"write_only": True} for name in SECRET_FIELDS}

    def get_webhook_url(self, bot: Bot) -> str | None:
        return webhook_url(bot)

    def get_secrets_set(self, bot: Bot) -> list[str]:
        return [name for name in SECRET_FIELDS if getattr(bot, name)]

    def validate(self, attrs):
        platform = attrs.get("platform", getattr(self.instance, "platform", None))
        if (
            self.instance is not None
            and "platform" in attrs
            and attrs["platform"] != self.instance.platform
        ):
            raise serializers.ValidationError({"platform": _("A bot's platform cannot change.")})
        token = attrs.get("telegram_token", getattr(self.instance, "telegram_token", ""))
        if platform == "telegram" and not token:
            raise serializers.ValidationError(
                {"telegram_token": _("A Telegram bot needs its token.")}
            )
        save_anyway = attrs.pop("save_anyway", False)
        candidate = copy.copy(self.instance) if self.instance is not None else Bot()
        for name, value in attrs.items():
            setattr(candidate, name, value)
        credentials_check_or_400(bot_credentials_check(candidate), save_anyway=save_anyway)
        if candidate.platform_username != getattr(self.instance, "platform_username", ""):
            attrs["platform_username"] = candidate.platform_username  # learnt by the check
        return attrs
