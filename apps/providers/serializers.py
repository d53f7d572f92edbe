import copy

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.core.credentials import credentials_check_or_400, save_anyway_field
from apps.core.masking import mask_headers, mask_secret
from apps.core.serializers import StrictModelSerializer
from apps.providers.credentials import provider_credentials_check
from apps.providers.models import ModelProfile, Provider


class ProviderSerializer(StrictModelSerializer):
    """A provider. Saving a new or changed address, key or headers asks it for its models."""

    save_anyway = save_anyway_field()
    api_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, style={"input_type": "password"}
    )
    api_key_masked = serializers.SerializerMethodField()
    extra_headers = serializers.JSONField(
        write_only=True,
        required=False,
        help_text=_("Sent with every request; stored encrypted, never returned."),
    )
    extra_headers_masked = serializers.SerializerMethodField(
        help_text=_("The extra headers' names with masked values.")
    )

    class Meta:
        model = Provider
        fields = [
            "id",
            "name",
            "base_url",
            "api_key",
            "api_key_masked",
            "request_timeout",
            "extra_headers",
            "extra_headers_masked",
            "enabled",
            "max_retries",
            "cooldown_after_failures",
            "cooldown_seconds",
            "save_anyway",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_api_key_masked(self, provider: Provider) -> str:
        return mask_secret(provider.api_key)

    def get_extra_headers_masked(self, provider: Provider) -> dict[str, str]:
        return mask_headers(provider.extra_headers)

    def validate_extra_headers(self, value):
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise serializers.ValidationError(_("Headers must be an object of string values."))
        return value

    def validate(self, attrs):
        save_anyway = attrs.pop("save_anyway", False)
        candidate = copy.copy(self.instance) if self.instance is not None else Provider()
        for name, value in attrs.items():
            setattr(candidate, name, value)
        credentials_check_or_400(provider_credentials_check(candidate), save_anyway=save_anyway)
        return attrs


class ModelProfileSerializer(StrictModelSerializer):
    class Meta:
        model = ModelProfile
        fields = [
            "id",
            "name",
            "provider",
            "model",
            "system_prompt",
            "temperature",
            "max_tokens",
            "history_messages",
            "fallback",
            "first_token_timeout",
            "stall_timeout",
            "context_budget",
            "price_input_per_1k",
            "price_output_per_1k",
            "cache_ttl",
            "accepts_images",
            "supports_tools",
            "transcription_model",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs):
        fallback = attrs.get("fallback")
        if fallback is not None and self.instance is not None:
            current = fallback
            while current is not None:
                if current.pk == self.instance.pk:
                    raise serializers.ValidationError({"fallback": _("Fallbacks form a loop.")})
                current = current.fallback
        return attrs
