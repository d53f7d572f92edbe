from django import forms
from django.contrib import admin
from django.utils.html import format_html

from apps.audit.admin import AuditedModelAdmin
from apps.bots.choices import Platform
from apps.bots.models import Bot
from apps.bots.serializers import SECRET_FIELDS
from apps.bots.services import bot_fill_defaults, webhook_url


class BotForm(forms.ModelForm):
    """Secrets are write-only: the form never shows them; empty keeps the stored value."""

    class Meta:
        model = Bot
        fields = "__all__"  # noqa: DJ007 - the admin's fieldsets choose what is shown
        widgets = {name: forms.PasswordInput(render_value=False) for name in SECRET_FIELDS}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in SECRET_FIELDS:
            field = self.fields[name]
            if self.instance.pk and getattr(self.instance, name):
                field.help_text = f"{field.help_text} Set; leave empty to keep it."

    def clean(self):
        cleaned = super().clean()
        for name in SECRET_FIELDS:
            if not cleaned.get(name) and self.instance.pk:
                cleaned[name] = getattr(self.instance, name)
        if cleaned.get("platform") == Platform.TELEGRAM and not cleaned.get("telegram_token"):
            self.add_error("telegram_token", "A Telegram bot needs its token.")
        return cleaned

    def save(self, commit=True):
        bot = super().save(commit=False)
        bot_fill_defaults(bot)
        if commit:
            bot.save()
        return bot


@admin.register(Bot)
class BotAdmin(AuditedModelAdmin):
    form = BotForm
    list_display = ["name", "platform", "enabled", "profile", "link"]
    list_filter = ["platform", "enabled"]
    search_fields = ["name", "feishu_app_id"]
    readonly_fields = ["id", "webhook", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["id", "name", "platform", "enabled", "profile", "webhook"]}),
        ("Platform API", {"fields": ["api_base_url"]}),
        ("Telegram", {"fields": ["telegram_token", "telegram_webhook_secret"]}),
        (
            "Feishu / Lark",
            {
                "fields": [
                    "feishu_app_id",
                    "feishu_app_secret",
                    "feishu_verification_token",
                    "feishu_encrypt_key",
                ]
            },
        ),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="Webhook URL")
    def webhook(self, bot: Bot) -> str:
        return webhook_url(bot) or "—" if bot.pk else "—"

    @admin.display(description="Open")
    def link(self, bot: Bot) -> str:
        if bot.platform == Platform.WEB:
            return format_html('<a href="/chat/{}/">web chat</a>', bot.pk)
        return "—"
