from django import forms
from django.contrib import admin

from apps.audit.admin import AuditedModelAdmin
from apps.core.masking import mask_secret
from apps.providers.models import ModelProfile, Provider


class ProviderForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted. Leave empty to keep the current key.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")

    class Meta:
        model = Provider
        fields = "__all__"  # noqa: DJ007 - the admin chooses what is shown

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("clear_api_key"):
            cleaned["api_key"] = ""
        elif not cleaned.get("api_key") and self.instance.pk:
            cleaned["api_key"] = self.instance.api_key
        return cleaned


@admin.register(Provider)
class ProviderAdmin(AuditedModelAdmin):
    form = ProviderForm
    list_display = ["name", "base_url", "masked_api_key", "enabled", "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["name", "base_url"]

    @admin.display(description="API key")
    def masked_api_key(self, provider: Provider) -> str:
        return mask_secret(provider.api_key) or "—"


@admin.register(ModelProfile)
class ModelProfileAdmin(AuditedModelAdmin):
    list_display = ["name", "provider", "model", "temperature", "max_tokens", "fallback"]
    list_filter = ["provider"]
    search_fields = ["name", "model"]
    autocomplete_fields = ["provider", "fallback"]
