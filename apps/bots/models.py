import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.bots.choices import (
    DEFAULT_API_BASE_URLS,
    AccessPolicy,
    ConnectionMode,
    EditedMessages,
    GroupTrigger,
    PairingStatus,
    Platform,
    UnprocessedStatus,
)
from apps.core.fields import EncryptedTextField


class Bot(models.Model):
    """One bot on one chat platform, answering with a model profile."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    platform = models.CharField(max_length=16, choices=Platform.choices)
    enabled = models.BooleanField(default=True, help_text="A disabled bot stores nothing.")
    profile = models.ForeignKey(
        "providers.ModelProfile",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bots",
        help_text="The model profile that answers. Without one the bot answers nothing.",
    )
    api_base_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="The platform API's base URL. Empty means the public one "
        "(https://api.telegram.org, https://open.feishu.cn); set it for a self-hosted "
        "Bot API server or the Lark domain https://open.larksuite.com.",
    )
    telegram_token = EncryptedTextField(
        blank=True, help_text="Telegram: the token from @BotFather."
    )
    telegram_webhook_secret = EncryptedTextField(
        blank=True,
        help_text="Telegram: the secret Telegram sends with each webhook call. "
        "Generated when empty.",
    )
    feishu_app_id = models.CharField(max_length=64, blank=True, help_text="Feishu: App ID.")
    feishu_app_secret = EncryptedTextField(blank=True, help_text="Feishu: App Secret.")
    feishu_verification_token = EncryptedTextField(
        blank=True, help_text="Feishu: Verification Token (event subscription)."
    )
    feishu_encrypt_key = EncryptedTextField(
        blank=True, help_text="Feishu: Encrypt Key (event subscription), if set there."
    )
    connection_mode = models.CharField(
        max_length=16,
        choices=ConnectionMode.choices,
        default=ConnectionMode.WEBHOOK,
        help_text="Persistent mode needs no public URL: `manage.py run_connectors` keeps the "
        "connection (Telegram long polling, Feishu long connection).",
    )
    group_trigger = models.CharField(
        max_length=16,
        choices=GroupTrigger.choices,
        default=GroupTrigger.MENTION,
        help_text="In group chats, which messages the bot answers.",
    )
    group_keyword = models.CharField(
        max_length=50,
        blank=True,
        help_text="The prefix that triggers the bot, e.g. /ask or 小助手.",
    )
    edited_messages = models.CharField(
        max_length=16, choices=EditedMessages.choices, default=EditedMessages.IGNORE
    )
    access_policy = models.CharField(
        max_length=16, choices=AccessPolicy.choices, default=AccessPolicy.OPEN
    )
    allowed_user_ids = models.JSONField(
        default=list,
        blank=True,
        help_text='Platform user ids allowed to chat, e.g. ["12345", "ou_abc"].',
    )
    daily_token_budget = models.PositiveIntegerField(
        null=True, blank=True, help_text="Tokens this bot may use per day (empty: no cap)."
    )
    user_daily_token_budget = models.PositiveIntegerField(
        null=True, blank=True, help_text="Tokens one platform user may use per day (empty: no cap)."
    )
    platform_username = models.CharField(
        max_length=128,
        blank=True,
        help_text="The bot's own username/open id on the platform (filled in automatically).",
    )
    telegram_update_offset = models.BigIntegerField(
        null=True, blank=True, help_text="Long polling: the next update id to fetch."
    )
    connector_status = models.CharField(
        max_length=200, blank=True, help_text="Persistent mode: the connection's last state."
    )
    connector_heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"

    @property
    def platform_api_base_url(self) -> str:
        """The base URL to call, with the platform's public default filled in."""
        return (self.api_base_url or DEFAULT_API_BASE_URLS[Platform(self.platform)]).rstrip("/")


class PairingRequest(models.Model):
    """An unknown user's request for access to a pairing-policy bot, decided by an admin."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="pairing_requests")
    platform_user_id = models.CharField(max_length=128)
    display_name = models.CharField(max_length=200, blank=True)
    code = models.CharField(max_length=16, help_text="The one-time code the user was given.")
    status = models.CharField(
        max_length=16, choices=PairingStatus.choices, default=PairingStatus.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "platform_user_id"], name="pairing_unique_user_per_bot"
            )
        ]

    def __str__(self) -> str:
        return f"{self.display_name or self.platform_user_id} → {self.bot.name} ({self.status})"


class UnprocessedEvent(models.Model):
    """An authentic platform call (or part of it) we could not use: kept, shown, replayable.

    Nothing a platform sends is dropped in silence: when its shape is not what we
    understand, the raw body is kept here with the reason, and an admin can replay it
    once the code understands it.
    """

    bot = models.ForeignKey(
        Bot, on_delete=models.CASCADE, related_name="unprocessed_events", verbose_name=_("bot")
    )
    platform = models.CharField(_("platform"), max_length=16, choices=Platform.choices)
    body = models.BinaryField(_("body"), help_text=_("The body exactly as it arrived."))
    reason = models.TextField(_("reason"), help_text=_("Why it could not be processed."))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    status = models.CharField(
        _("status"), max_length=16, choices=UnprocessedStatus.choices, default=UnprocessedStatus.NEW
    )
    replayed_at = models.DateTimeField(_("replayed at"), null=True, blank=True)
    result = models.TextField(_("result"), blank=True, help_text=_("What the last replay did."))

    class Meta:
        ordering = ["-received_at"]
        verbose_name = _("unprocessed event")
        verbose_name_plural = _("unprocessed events")

    def __str__(self) -> str:
        return f"{self.get_platform_display()} #{self.pk}: {self.reason[:60]}"
