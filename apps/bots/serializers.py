import copy

from django.core.exceptions import ValidationError as ModelValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.bots.config import (
    config_field_names,
    config_public,
    config_secrets_set,
    config_validate,
    connection_mode_check,
)
from apps.bots.credentials import bot_credentials_check
from apps.bots.models import Bot
from apps.bots.services import webhook_url
from apps.core.credentials import credentials_check_or_400, save_anyway_field
from apps.core.serializers import StrictModelSerializer


class BotSerializer(StrictModelSerializer):
    """A bot. Its platform's settings are fields named "<platform>_<key>" (telegram_token,
    feishu_app_id), from the platform's schema; secrets are write-only. Saving new or
    changed platform credentials checks them with the platform."""

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

    def get_fields(self):
        fields = super().get_fields()
        for name, (_platform, config_field) in config_field_names().items():
            fields[name] = serializers.CharField(
                required=False,
                allow_blank=True,
                write_only=config_field.secret,
                max_length=config_field.max_length,
                help_text=config_field.help_text,
                label=config_field.label,
            )
        return fields

    def to_representation(self, bot: Bot):
        data = super().to_representation(bot)
        # Only the bot's own platform's settings, from its config; secrets never.
        for name in config_field_names():
            data.pop(name, None)
        data.update(config_public(platform=bot.platform, config=bot.config or {}))
        return data

    def get_webhook_url(self, bot: Bot) -> str | None:
        return webhook_url(bot)

    def get_secrets_set(self, bot: Bot) -> list[str]:
        return config_secrets_set(platform=bot.platform, config=bot.config or {})

    def validate(self, attrs):
        platform = attrs.get("platform", getattr(self.instance, "platform", None))
        if (
            self.instance is not None
            and "platform" in attrs
            and attrs["platform"] != self.instance.platform
        ):
            raise serializers.ValidationError({"platform": _("A bot's platform cannot change.")})
        values = {}
        for name, (owner, config_field) in config_field_names().items():
            if name not in attrs:
                continue
            value = attrs.pop(name)
            if owner != platform:
                raise serializers.ValidationError({name: [_("Not a setting of this platform.")]})
            values[config_field.key] = value
        current = self.instance.config if self.instance is not None else {}
        mode = attrs.get("connection_mode", getattr(self.instance, "connection_mode", ""))
        try:
            connection_mode_check(platform=platform, connection_mode=mode)
            attrs["config"] = config_validate(
                platform=platform, values=values, current=current or {}
            )
        except ModelValidationError as error:
            raise serializers.ValidationError(error.message_dict) from error
        save_anyway = attrs.pop("save_anyway", False)
        candidate = copy.copy(self.instance) if self.instance is not None else Bot()
        for name, value in attrs.items():
            setattr(candidate, name, value)
        credentials_check_or_400(bot_credentials_check(candidate), save_anyway=save_anyway)
        if candidate.platform_username != getattr(self.instance, "platform_username", ""):
            attrs["platform_username"] = candidate.platform_username  # learnt by the check
        return attrs
