import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.bots.choices import (
    AccessPolicy,
    ConnectionMode,
    EditedMessages,
    GroupTrigger,
    PairingStatus,
    Platform,
    ReplyLanguage,
    UnprocessedStatus,
    WhileAnswering,
)
from apps.bots.platforms import platform_spec
from apps.core.fields import EncryptedJSONField


class Bot(models.Model):
    """One bot on one chat platform, answering with a model profile."""

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("ID")
    )
    name = models.CharField(max_length=100, verbose_name=_("name"))
    platform = models.CharField(max_length=16, choices=Platform.choices, verbose_name=_("platform"))
    enabled = models.BooleanField(
        default=True, help_text=_("A disabled bot stores nothing."), verbose_name=_("enabled")
    )
    profile = models.ForeignKey(
        "providers.ModelProfile",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bots",
        help_text=_("The model profile that answers. Without one the bot answers nothing."),
        verbose_name=_("profile"),
    )
    api_base_url = models.URLField(
        max_length=500,
        blank=True,
        help_text=_(
            "The platform API's base URL. Empty means the public one "
            "(https://api.telegram.org, https://open.feishu.cn); set it for a self-hosted "
            "Bot API server or the Lark domain https://open.larksuite.com."
        ),
        verbose_name=_("API base URL"),
    )
    config = EncryptedJSONField(
        blank=True,
        default=dict,
        help_text=_(
            "The platform's settings and credentials, as its package declares them "
            "(apps/bots/platforms/<platform>/). Stored encrypted; secrets are never shown."
        ),
        verbose_name=_("platform settings"),
    )
    connection_mode = models.CharField(
        max_length=16,
        choices=ConnectionMode.choices,
        default=ConnectionMode.WEBHOOK,
        help_text=_(
            "Persistent mode needs no public URL: `manage.py run_connectors` keeps the "
            "connection (Telegram long polling, Feishu long connection)."
        ),
        verbose_name=_("connection mode"),
    )
    group_trigger = models.CharField(
        max_length=16,
        choices=GroupTrigger.choices,
        default=GroupTrigger.MENTION,
        help_text=_("In group chats, which messages the bot answers."),
        verbose_name=_("group trigger"),
    )
    group_keyword = models.CharField(
        max_length=50,
        blank=True,
        help_text=_("The prefix that triggers the bot, e.g. /ask or 小助手."),
        verbose_name=_("group keyword"),
    )
    edited_messages = models.CharField(
        max_length=16,
        choices=EditedMessages.choices,
        default=EditedMessages.IGNORE,
        verbose_name=_("edited messages"),
    )
    access_policy = models.CharField(
        max_length=16,
        choices=AccessPolicy.choices,
        default=AccessPolicy.OPEN,
        verbose_name=_("access policy"),
    )
    allowed_user_ids = models.JSONField(
        default=list,
        blank=True,
        help_text=_('Platform user ids allowed to chat, e.g. ["12345", "ou_abc"].'),
        verbose_name=_("allowed user IDs"),
    )
    daily_token_budget = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_("Tokens this bot may use per day (empty: no cap)."),
        verbose_name=_("daily token budget"),
    )
    user_daily_token_budget = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_("Tokens one platform user may use per day (empty: no cap)."),
        verbose_name=_("user daily token budget"),
    )
    reply_language = models.CharField(
        _("reply language"),
        max_length=16,
        choices=ReplyLanguage.choices,
        default=ReplyLanguage.AUTO,
        help_text=_(
            "The language of the bot's own replies: help, refusals, notices and apologies. "
            "Automatic answers each message in the language it is written in."
        ),
    )
    while_answering = models.CharField(
        _("when the user writes again"),
        max_length=16,
        choices=WhileAnswering.choices,
        default=WhileAnswering.FINISH,
        help_text=_(
            "A new message while an answer is still being written: finish that answer and "
            "then answer the new message, or stop it (the text so far is kept) and answer "
            "everything the user wrote together."
        ),
    )
    mask_personal_data = models.BooleanField(
        _("mask personal data"),
        default=False,
        help_text=_(
            "Mask phone numbers, e-mail addresses, ID and bank-card numbers in what users "
            "write before it is stored, exported or sent to the model (e.g. 138****8000). "
            "Logs are always masked."
        ),
    )
    platform_username = models.CharField(
        max_length=128,
        blank=True,
        help_text=_("The bot's own username/open id on the platform (filled in automatically)."),
        verbose_name=_("platform username"),
    )
    poll_offset = models.BigIntegerField(
        null=True,
        blank=True,
        help_text=_("Long polling: the next update id to fetch."),
        verbose_name=_("poll offset"),
    )
    connector_status = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("Persistent mode: the connection's last state."),
        verbose_name=_("connector status"),
    )
    connector_heartbeat_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("connector heartbeat at")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("bot")
        verbose_name_plural = _("bots")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"

    def masked_values(self) -> dict:
        """What the audit log keeps of this row instead of the encrypted config."""
        from apps.bots.config import config_masked

        return {"config": config_masked(platform=self.platform, config=self.config or {})}

    @property
    def platform_api_base_url(self) -> str:
        """The base URL to call, with the platform's public default filled in."""
        spec = platform_spec(self.platform)
        return (self.api_base_url or (spec.default_api_base_url if spec else "")).rstrip("/")


class PairingRequest(models.Model):
    """An unknown user's request for access to a pairing-policy bot, decided by an admin."""

    bot = models.ForeignKey(
        Bot, on_delete=models.CASCADE, related_name="pairing_requests", verbose_name=_("bot")
    )
    platform_user_id = models.CharField(max_length=128, verbose_name=_("platform user ID"))
    display_name = models.CharField(max_length=200, blank=True, verbose_name=_("display name"))
    code = models.CharField(
        max_length=16, help_text=_("The one-time code the user was given."), verbose_name=_("code")
    )
    status = models.CharField(
        max_length=16,
        choices=PairingStatus.choices,
        default=PairingStatus.PENDING,
        verbose_name=_("status"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    decided_at = models.DateTimeField(null=True, blank=True, verbose_name=_("decided at"))
    decided_by = models.ForeignKey(
        "auth.User",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("decided by"),
    )

    class Meta:
        verbose_name = _("pairing request")
        verbose_name_plural = _("pairing requests")
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
