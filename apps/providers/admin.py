from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import capfirst, format_lazy
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from apps.audit.admin import AuditedModelAdmin
from apps.core.credentials import CredentialsCheckedForm
from apps.core.masking import mask_headers, mask_secret
from apps.providers.credentials import provider_credentials_check
from apps.providers.models import DEFAULT_SYSTEM_PROMPT, ModelProfile, Provider
from apps.providers.selectors import provider_health
from apps.providers.services import profile_probe, provider_cooldown_clear


class WriteOnlyJSONField(forms.JSONField):
    """A JSON field whose stored value is never shown: empty, not "null", when unset."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class ProviderForm(CredentialsCheckedForm):
    """The key and headers are write-only; saving asks the provider for its models (GET /models)."""

    credentials_check = staticmethod(provider_credentials_check)

    api_key = forms.CharField(
        label=_("API key"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Stored encrypted. Leave empty to keep the current key."),
    )
    clear_api_key = forms.BooleanField(
        label=_("Remove the key"), required=False, help_text=_("Remove the stored key.")
    )
    extra_headers = WriteOnlyJSONField(
        label=capfirst(_("extra headers")),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            'Sent with every request, e.g. {"X-Org": "acme"}. Stored encrypted and '
            "never shown again. Leave empty to keep the current headers."
        ),
    )
    clear_extra_headers = forms.BooleanField(
        label=_("Remove the headers"), required=False, help_text=_("Remove the stored headers.")
    )

    class Meta:
        model = Provider
        fields = "__all__"  # noqa: DJ007 - the admin chooses what is shown

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["extra_headers"] = None  # write-only, like the key
        if self.instance.pk and self.instance.extra_headers:
            shown = ", ".join(
                f"{k}: {v}" for k, v in mask_headers(self.instance.extra_headers).items()
            )
            self.fields["extra_headers"].help_text = format_lazy(
                "{} {}",
                self.fields["extra_headers"].help_text,
                _("Now set: %(headers)s.") % {"headers": shown},
            )

    def clean_extra_headers(self):
        value = self.cleaned_data.get("extra_headers")
        if value in (None, ""):
            return None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise forms.ValidationError(_("Headers must be an object of string values."))
        return value

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("clear_api_key"):
            cleaned["api_key"] = ""
        elif not cleaned.get("api_key") and self.instance.pk:
            cleaned["api_key"] = self.instance.api_key
        if cleaned.get("clear_extra_headers"):
            cleaned["extra_headers"] = {}
        elif cleaned.get("extra_headers") is None:
            cleaned["extra_headers"] = self.instance.extra_headers if self.instance.pk else {}
        return cleaned


@admin.register(Provider)
class ProviderAdmin(AuditedModelAdmin):
    form = ProviderForm
    list_display = [
        "name",
        "base_url",
        "masked_api_key",
        "enabled",
        "last_success",
        "last_error",
        "cooldown",
    ]
    list_filter = ["enabled"]
    search_fields = ["name", "base_url"]
    actions = ["end_cooldown"]
    fieldsets = [
        (
            None,
            {
                "fields": ["name", "base_url", "api_key", "clear_api_key", "enabled"],
                "description": _(
                    "Any OpenAI-compatible endpoint. Saving checks the address and the key "
                    "by asking the provider for its models."
                ),
            },
        ),
        (
            _("Requests"),
            {
                "fields": [
                    "request_timeout",
                    "max_retries",
                    "extra_headers",
                    "clear_extra_headers",
                ]
            },
        ),
        (_("Cooldown"), {"fields": ["cooldown_after_failures", "cooldown_seconds"]}),
        (None, {"fields": ["save_anyway"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            # Nothing is stored yet: nothing to remove.
            hidden, masked = {"clear_api_key", "clear_extra_headers"}, dict[str, str]()
        elif self.has_change_permission(request, obj):
            hidden, masked = set(), {}
        else:
            # A read-only page shows every field's value: the secrets only masked.
            hidden = {"clear_api_key", "clear_extra_headers", "save_anyway"}
            masked = {"api_key": "masked_api_key", "extra_headers": "masked_extra_headers"}
        return [
            (
                name,
                {
                    **options,
                    "fields": [
                        masked.get(f, f) if isinstance(f, str) else f
                        for f in options["fields"]
                        if f not in hidden
                    ],
                },
            )
            for name, options in self.fieldsets
            if any(f not in hidden for f in options["fields"])
        ]

    @admin.display(description=_("API key"))
    def masked_api_key(self, provider: Provider) -> str:
        return mask_secret(provider.api_key) or "—"

    @admin.display(description=_("extra headers"))
    def masked_extra_headers(self, provider: Provider) -> str:
        headers = mask_headers(provider.extra_headers)
        return ", ".join(f"{name}: {value}" for name, value in headers.items()) or "—"

    # Health is read from Redis, where every worker records its calls.
    @admin.display(description=_("Last success"))
    def last_success(self, provider: Provider) -> str:
        at = provider_health(provider=provider).last_success_at
        return timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S") if at else "—"

    @admin.display(description=_("Last error"))
    def last_error(self, provider: Provider) -> str:
        health = provider_health(provider=provider)
        if not health.last_error_at:
            return "—"
        at = timezone.localtime(health.last_error_at).strftime("%Y-%m-%d %H:%M:%S")
        return f"{at}: {health.last_error[:120]}"

    @admin.display(description=_("Cooldown"))
    def cooldown(self, provider: Provider) -> str:
        health = provider_health(provider=provider)
        if health.cooldown_seconds_left:
            return _("cooling down, %(seconds)ds left") % {
                "seconds": round(health.cooldown_seconds_left)
            }
        if health.consecutive_failures:
            return ngettext(
                "%(count)d failure in a row",
                "%(count)d failures in a row",
                health.consecutive_failures,
            ) % {"count": health.consecutive_failures}
        return gettext("ok")

    @admin.action(description=_("End the cooldown of the selected providers"))
    def end_cooldown(self, request, queryset):
        for provider in queryset:
            provider_cooldown_clear(provider=provider)
        self.message_user(request, _("Cooldown ended."), messages.SUCCESS)


@admin.register(ModelProfile)
class ModelProfileAdmin(AuditedModelAdmin):
    list_display = [
        "name",
        "provider",
        "model",
        "temperature",
        "max_tokens",
        "context_budget",
        "fallback",
        "test_link",
    ]
    list_filter = ["provider"]
    search_fields = ["name", "model"]
    autocomplete_fields = ["provider", "fallback"]

    def get_changeform_initial_data(self, request):
        return {
            "system_prompt": DEFAULT_SYSTEM_PROMPT,
            **super().get_changeform_initial_data(request),
        }

    def get_urls(self):
        return [
            path(
                "<int:profile_id>/test/",
                self.admin_site.admin_view(self.test_view),
                name="providers_modelprofile_test",
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("Test"))
    def test_link(self, profile: ModelProfile) -> str:
        url = reverse("admin:providers_modelprofile_test", args=[profile.pk])
        return format_html('<a href="{}">{}</a>', url, _("Test this profile"))

    def test_view(self, request, profile_id: int):
        """Send a probe to the profile (GET shows the form, POST runs it) and show the timings."""
        profile = get_object_or_404(ModelProfile.objects.select_related("provider"), pk=profile_id)
        if not self.has_change_permission(request, profile):  # a probe costs tokens
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        result = None
        prompt = request.POST.get("prompt") or gettext(
            "Reply with one short sentence: are you there?"
        )
        if request.method == "POST":
            result = profile_probe(profile=profile, prompt=prompt)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": profile,
            "title": _("Test %(profile)s") % {"profile": profile.name},
            "profile": profile,
            "prompt": prompt,
            "result": result,
        }
        return TemplateResponse(request, "admin/providers/modelprofile/test.html", context)
