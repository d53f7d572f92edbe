from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.audit.admin import AuditedModelAdmin
from apps.bots.choices import PairingStatus, Platform, UnprocessedStatus
from apps.bots.config import (
    config_field_name,
    config_field_names,
    config_fields,
    config_validate,
    connection_mode_check,
)
from apps.bots.credentials import bot_credentials_check
from apps.bots.models import Bot, PairingRequest, UnprocessedEvent
from apps.bots.platforms import PlatformSpec, platform_spec, platform_specs
from apps.bots.platforms.base import ConfigField
from apps.bots.services import (
    bot_fill_defaults,
    pairing_decide,
    unprocessed_event_dismiss,
    unprocessed_event_replay,
    webhook_url,
)
from apps.core.credentials import CredentialsCheckedForm

# Connection, group chats and access lists: the chat platforms' settings, not the web chat's.
CHAT_PLATFORM_FIELDS = (
    "connection_mode",
    "api_base_url",
    "group_trigger",
    "group_keyword",
    "edited_messages",
    "access_policy",
    "allowed_user_ids",
)
# Help for the fields whose model help is missing or too terse for a first-time operator.
HELP_TEXTS = {
    "profile": _(
        "The model profile that answers (a model on a provider, with its prompt). "
        "Without one the bot answers nothing."
    ),
    "edited_messages": _("What the bot does when a user edits a message it already answered."),
    "connection_mode": _(
        "Webhook mode needs a public HTTPS address that the platform can call. "
        "Persistent mode needs none: <code>manage.py run_connectors</code> "
        "(part of <code>make run</code>) keeps the connection."
    ),
    "access_policy": _(
        "Who may chat with the bot. With pairing, an unknown user gets a code that an "
        "admin approves under Pairing requests."
    ),
}


def _spec(platform: str) -> PlatformSpec:
    spec = platform_spec(platform)
    if spec is None:
        raise LookupError(f"no platform {platform!r}")
    return spec


class BotForm(CredentialsCheckedForm):
    """Each platform's settings come from its schema (`PlatformSpec.config`) as fields
    named "<platform>_<key>". Secrets are write-only: never shown; empty keeps them.

    Saving checks the platform credentials (Telegram getMe, a Feishu tenant token).
    """

    credentials_check = staticmethod(bot_credentials_check)

    class Meta:
        model = Bot
        exclude = ["config"]  # edited through the platform's fields below

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, text in HELP_TEXTS.items():
            if name in self.fields:
                self.fields[name].help_text = text
        if "profile" in self.fields:
            self.fields["profile"].label = _("Model profile")
        stored: dict[str, Any] = (self.instance.config or {}) if self.instance.pk else {}
        for name, (platform, config_field) in config_field_names().items():
            field = self.fields.get(name)
            if field is None or platform != self.instance.platform:
                continue
            if config_field.secret and stored.get(config_field.key):
                field.help_text = format_lazy(
                    "{} {}", field.help_text, _("Set; leave empty to keep it.")
                )
            elif not config_field.secret:
                field.initial = stored.get(config_field.key, "")

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        platform = cleaned.get("platform") or self.instance.platform
        # The add page shows every platform's fields until one is chosen: only its own count.
        values = {
            config_field.key: cleaned.get(name, "")
            for name, (owner, config_field) in config_field_names().items()
            if owner == platform and name in self.fields
        }
        current = self.instance.config if self.instance.platform == platform else {}
        try:
            connection_mode_check(
                platform=platform, connection_mode=cleaned.get("connection_mode", "")
            )
            self.instance.config = config_validate(
                platform=platform, values=values, current=current or {}
            )
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                self.add_error(name if name in self.fields else None, messages)
        return cleaned

    def save(self, commit=True):
        bot = super().save(commit=False)
        bot_fill_defaults(bot)
        if commit:
            bot.save()
        return bot


def _config_form_field(config_field: ConfigField) -> forms.CharField:
    return forms.CharField(
        required=False,
        max_length=config_field.max_length,
        label=config_field.label,
        help_text=config_field.help_text,
        widget=forms.PasswordInput(render_value=False) if config_field.secret else None,
    )


# The platforms' settings as form fields, declared on the class so fieldsets can name them.
_CONFIG_FORM_FIELDS = {
    name: _config_form_field(config_field)
    for name, (_platform, config_field) in config_field_names().items()
}
BotForm.base_fields.update(_CONFIG_FORM_FIELDS)
BotForm.declared_fields.update(_CONFIG_FORM_FIELDS)


def _platform_classes(*platforms: str) -> list[str]:
    """Fieldset classes the add page's script shows or hides by the chosen platform."""
    return ["platform-fields", *(f"platform-{platform}" for platform in platforms)]


@admin.register(Bot)
class BotAdmin(AuditedModelAdmin):
    form = BotForm
    list_display = [
        "name",
        "platform",
        "enabled",
        "profile",
        "connection_mode",
        "connector_status",
        "link",
    ]
    list_filter = ["platform", "enabled", "connection_mode"]
    search_fields = ["name", "platform_username"]
    readonly_fields = [
        "id",
        "webhook",
        "link",
        "platform_username",
        "connector_status",
        "connector_heartbeat_at",
        "poll_offset",
        "created_at",
        "updated_at",
    ]

    class Media:
        js = ["admin/js/bot_platform_fields.js"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "platform"] if obj is not None else fields

    def get_fieldsets(self, request, obj=None):
        """A change page shows its platform's fields only; the add page all, sorted by a script."""
        chat = tuple(name for name, spec in platform_specs().items() if spec.config)
        if obj is None:
            return [
                (None, {"fields": ["name", "platform", "enabled", "profile"]}),
                self._connection_fieldset(chat, add=True),
                *(self._config_fieldset(platform, add=True) for platform in chat),
                self._chats_fieldset(chat),
                (_("Replies"), {"fields": ["reply_language", "while_answering"]}),
                (_("Privacy"), {"fields": ["mask_personal_data"]}),
                self._access_fieldset(chat),
                self._budgets_fieldset(),
                (None, {"fields": ["save_anyway"]}),
            ]
        platform = obj.platform
        if not config_fields(platform):
            return [
                (None, {"fields": ["id", "name", "platform", "enabled", "profile", "link"]}),
                (_("Replies"), {"fields": ["reply_language", "while_answering"]}),
                (_("Privacy"), {"fields": ["mask_personal_data"]}),
                self._budgets_fieldset(),
                (None, {"fields": ["save_anyway", "created_at", "updated_at"]}),
            ]
        return [
            (None, {"fields": ["id", "name", "platform", "enabled", "profile", "webhook"]}),
            self._config_fieldset(platform, add=False),
            self._connection_fieldset((platform,), add=False),
            self._chats_fieldset((platform,)),
            (_("Replies"), {"fields": ["reply_language", "while_answering"]}),
            (_("Privacy"), {"fields": ["mask_personal_data"]}),
            self._access_fieldset((platform,)),
            self._budgets_fieldset(),
            (None, {"fields": ["save_anyway", "created_at", "updated_at"]}),
        ]

    @staticmethod
    def _config_fieldset(platform: str, *, add: bool):
        """The platform's settings, from its schema (generated ones only once they exist)."""
        spec = _spec(platform)
        options = {
            "fields": [
                config_field_name(platform, field.key)
                for field in spec.config
                if not (add and field.generated)
            ],
            "classes": _platform_classes(platform),
        }
        if spec.config_description:
            options["description"] = spec.config_description
        return (spec.label, options)

    @staticmethod
    def _connection_fieldset(platforms, *, add: bool):
        fields = ["connection_mode", "api_base_url"]
        if not add:
            fields += ["platform_username", "connector_status", "connector_heartbeat_at"]
            if any(_spec(platform).connector for platform in platforms):
                fields.append("poll_offset")
        return (_("Connection"), {"fields": fields, "classes": _platform_classes(*platforms)})

    @staticmethod
    def _chats_fieldset(platforms):
        return (
            _("Group chats"),
            {
                "fields": ["group_trigger", "group_keyword", "edited_messages"],
                "classes": _platform_classes(*platforms),
            },
        )

    @staticmethod
    def _access_fieldset(platforms):
        return (
            _("Access"),
            {
                "fields": ["access_policy", "allowed_user_ids"],
                "classes": _platform_classes(*platforms),
            },
        )

    @staticmethod
    def _budgets_fieldset():
        return (
            _("Budgets"),
            {"fields": ["daily_token_budget", "user_daily_token_budget"]},
        )

    @admin.display(description=_("Webhook URL"))
    def webhook(self, bot: Bot) -> str:
        return webhook_url(bot) or "—" if bot.pk else "—"

    @admin.display(description=_("Open"))
    def link(self, bot: Bot) -> str:
        if bot.platform == Platform.WEB and bot.pk:
            return format_html('<a href="/chat/{}/">{}</a>', bot.pk, _("web chat"))
        return "—"


@admin.register(PairingRequest)
class PairingRequestAdmin(admin.ModelAdmin):
    """Unknown users' access requests: approve or reject them (audited, via the service)."""

    list_display = ["code", "display_name", "platform_user_id", "bot", "status", "created_at"]
    list_filter = ["status", "bot"]
    search_fields = ["code", "display_name", "platform_user_id"]
    readonly_fields = [
        "bot",
        "platform_user_id",
        "display_name",
        "code",
        "status",
        "created_at",
        "decided_at",
        "decided_by",
    ]
    actions = ["approve_requests", "reject_requests"]

    def has_add_permission(self, request):
        return False

    def _decide(self, request, queryset, *, approve: bool) -> None:
        decided = 0
        for pairing in queryset.select_related("bot"):
            pairing_decide(request=pairing, approve=approve, actor=request.user)
            decided += 1
        if approve:
            text = ngettext("Approved %d request.", "Approved %d requests.", decided)
        else:
            text = ngettext("Rejected %d request.", "Rejected %d requests.", decided)
        self.message_user(request, text % decided, messages.SUCCESS)

    @admin.action(description=_("Approve selected requests"), permissions=["change"])
    def approve_requests(self, request, queryset):
        self._decide(request, queryset.exclude(status=PairingStatus.APPROVED), approve=True)

    @admin.action(description=_("Reject selected requests"), permissions=["change"])
    def reject_requests(self, request, queryset):
        self._decide(request, queryset.exclude(status=PairingStatus.REJECTED), approve=False)


BODY_PREVIEW_CHARACTERS = 20_000


@admin.register(UnprocessedEvent)
class UnprocessedEventAdmin(admin.ModelAdmin):
    """What platforms sent that we could not use: read it, replay it after a fix, or dismiss it."""

    list_display = ["received_at", "bot", "platform", "short_reason", "status"]
    list_filter = ["status", "platform", "bot"]
    search_fields = ["reason"]
    date_hierarchy = "received_at"
    readonly_fields = (
        "bot",
        "platform",
        "received_at",
        "status",
        "reason",
        "body_preview",
        "replayed_at",
        "result",
    )
    fields = readonly_fields
    actions = ["replay_events", "dismiss_events"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    @admin.display(description=_("reason"))
    def short_reason(self, event: UnprocessedEvent) -> str:
        return event.reason if len(event.reason) <= 100 else event.reason[:99] + "…"

    @admin.display(description=_("body"))
    def body_preview(self, event: UnprocessedEvent) -> str:
        text = bytes(event.body).decode("utf-8", "replace")
        if len(text) > BODY_PREVIEW_CHARACTERS:
            text = text[:BODY_PREVIEW_CHARACTERS] + "\n…"
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)

    @admin.action(description=_("Replay selected events"), permissions=["change"])
    def replay_events(self, request, queryset):
        replayed = failed = 0
        for event in queryset.exclude(status=UnprocessedStatus.REPLAYED):
            event = unprocessed_event_replay(event=event, actor=request.user)
            if event.status == UnprocessedStatus.REPLAYED:
                replayed += 1
            else:
                failed += 1
        if replayed:
            self.message_user(
                request,
                ngettext("Replayed %d event.", "Replayed %d events.", replayed) % replayed,
                messages.SUCCESS,
            )
        if failed:
            self.message_user(
                request,
                ngettext(
                    "%d event still cannot be processed; see its result.",
                    "%d events still cannot be processed; see their results.",
                    failed,
                )
                % failed,
                messages.WARNING,
            )

    @admin.action(description=_("Dismiss selected events"), permissions=["change"])
    def dismiss_events(self, request, queryset):
        dismissed = 0
        for event in queryset.filter(status=UnprocessedStatus.NEW):
            unprocessed_event_dismiss(event=event, actor=request.user)
            dismissed += 1
        self.message_user(
            request, ngettext("Dismissed %d event.", "Dismissed %d events.", dismissed) % dismissed
        )
