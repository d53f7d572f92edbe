from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.audit.admin import AuditedModelAdmin
from apps.bots.choices import PairingStatus, Platform, UnprocessedStatus
from apps.bots.credentials import bot_credentials_check
from apps.bots.models import Bot, PairingRequest, UnprocessedEvent
from apps.bots.serializers import SECRET_FIELDS
from apps.bots.services import (
    bot_fill_defaults,
    pairing_decide,
    unprocessed_event_dismiss,
    unprocessed_event_replay,
    webhook_url,
)
from apps.core.credentials import CredentialsCheckedForm

# The fields only some platforms use; a bot's form shows those of its platform alone.
PLATFORM_FIELDS = {
    Platform.WEB: (),
    Platform.TELEGRAM: ("telegram_token", "telegram_webhook_secret"),
    Platform.FEISHU: (
        "feishu_app_id",
        "feishu_app_secret",
        "feishu_verification_token",
        "feishu_encrypt_key",
    ),
}
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


class BotForm(CredentialsCheckedForm):
    """Secrets are write-only: the form never shows them; empty keeps the stored value.

    Saving checks the platform credentials (Telegram getMe, a Feishu tenant token).
    """

    credentials_check = staticmethod(bot_credentials_check)

    class Meta:
        model = Bot
        fields = "__all__"  # noqa: DJ007 - the admin's fieldsets choose what is shown
        widgets = {name: forms.PasswordInput(render_value=False) for name in SECRET_FIELDS}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, text in HELP_TEXTS.items():
            if name in self.fields:
                self.fields[name].help_text = text
        if "profile" in self.fields:
            self.fields["profile"].label = _("Model profile")
        for name in SECRET_FIELDS:
            field = self.fields.get(name)
            if field is not None and self.instance.pk and getattr(self.instance, name):
                field.help_text = format_lazy(
                    "{} {}", field.help_text, _("Set; leave empty to keep it.")
                )

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        for name in SECRET_FIELDS:
            if not cleaned.get(name) and self.instance.pk:
                cleaned[name] = getattr(self.instance, name)
        platform = cleaned.get("platform") or self.instance.platform
        # The add page shows every platform's fields until one is chosen: keep only its own.
        for other, names in PLATFORM_FIELDS.items():
            if other != platform:
                for name in names:
                    if name in cleaned:
                        cleaned[name] = ""
        if platform == Platform.TELEGRAM and not cleaned.get("telegram_token"):
            self.add_error("telegram_token", _("A Telegram bot needs its token."))
        if platform == Platform.FEISHU:
            for name in ("feishu_app_id", "feishu_app_secret"):
                if not cleaned.get(name) and name in self.fields:
                    self.add_error(name, _("A Feishu / Lark bot needs its app ID and secret."))
        return cleaned

    def save(self, commit=True):
        bot = super().save(commit=False)
        bot_fill_defaults(bot)
        if commit:
            bot.save()
        return bot


def _platform_classes(*platforms: Platform) -> list[str]:
    """Fieldset classes the add page's script shows or hides by the chosen platform."""
    return ["platform-fields", *(f"platform-{platform.value}" for platform in platforms)]


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
    search_fields = ["name", "feishu_app_id", "platform_username"]
    readonly_fields = [
        "id",
        "webhook",
        "link",
        "platform_username",
        "connector_status",
        "connector_heartbeat_at",
        "telegram_update_offset",
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
        chat = (Platform.TELEGRAM, Platform.FEISHU)
        if obj is None:
            return [
                (None, {"fields": ["name", "platform", "enabled", "profile"]}),
                self._connection_fieldset(chat, add=True),
                (
                    "Telegram",
                    {"fields": ["telegram_token"], "classes": _platform_classes(Platform.TELEGRAM)},
                ),
                self._feishu_fieldset(),
                self._chats_fieldset(chat),
                (_("Replies"), {"fields": ["reply_language", "while_answering"]}),
                (_("Privacy"), {"fields": ["mask_personal_data"]}),
                self._access_fieldset(chat),
                self._budgets_fieldset(),
                (None, {"fields": ["save_anyway"]}),
            ]
        platform = Platform(obj.platform)
        if platform == Platform.WEB:
            return [
                (None, {"fields": ["id", "name", "platform", "enabled", "profile", "link"]}),
                (_("Replies"), {"fields": ["reply_language", "while_answering"]}),
                (_("Privacy"), {"fields": ["mask_personal_data"]}),
                self._budgets_fieldset(),
                (None, {"fields": ["save_anyway", "created_at", "updated_at"]}),
            ]
        credentials = (
            (
                "Telegram",
                {"fields": ["telegram_token", "telegram_webhook_secret", "telegram_update_offset"]},
            )
            if platform == Platform.TELEGRAM
            else self._feishu_fieldset()
        )
        return [
            (None, {"fields": ["id", "name", "platform", "enabled", "profile", "webhook"]}),
            credentials,
            self._connection_fieldset((platform,), add=False),
            self._chats_fieldset((platform,)),
            (_("Replies"), {"fields": ["reply_language", "while_answering"]}),
            (_("Privacy"), {"fields": ["mask_personal_data"]}),
            self._access_fieldset((platform,)),
            self._budgets_fieldset(),
            (None, {"fields": ["save_anyway", "created_at", "updated_at"]}),
        ]

    @staticmethod
    def _connection_fieldset(platforms, *, add: bool):
        fields = ["connection_mode", "api_base_url"]
        if not add:
            fields += ["platform_username", "connector_status", "connector_heartbeat_at"]
        return (_("Connection"), {"fields": fields, "classes": _platform_classes(*platforms)})

    @staticmethod
    def _feishu_fieldset():
        return (
            _("Feishu / Lark"),
            {
                "fields": [
                    "feishu_app_id",
                    "feishu_app_secret",
                    "feishu_verification_token",
                    "feishu_encrypt_key",
                ],
                "classes": _platform_classes(Platform.FEISHU),
                "description": _(
                    "From the Feishu / Lark developer console: Credentials &amp; Basic Info, "
                    "and Events &amp; Callbacks → Encryption strategy."
                ),
            },
        )

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
