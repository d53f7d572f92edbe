import uuid

from django.db import models

from apps.bots.choices import DEFAULT_API_BASE_URLS, Platform
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
