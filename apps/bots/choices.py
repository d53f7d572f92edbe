from django.db import models
from django.utils.translation import gettext_lazy as _


class Platform(models.TextChoices):
    WEB = "web", "Web chat"
    TELEGRAM = "telegram", "Telegram"
    FEISHU = "feishu", "Feishu / Lark"


DEFAULT_API_BASE_URLS = {
    Platform.WEB: "",
    Platform.TELEGRAM: "https://api.telegram.org",
    Platform.FEISHU: "https://open.feishu.cn",
}


class GroupTrigger(models.TextChoices):
    MENTION = "mention", "When @mentioned, replied to, or sent a command"
    ALL = "all", "Every message"
    KEYWORD = "keyword", "Messages starting with the keyword"


class EditedMessages(models.TextChoices):
    IGNORE = "ignore", "Ignore edits"
    ANSWER = "answer", "Answer the edited text again"


class ConnectionMode(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (the platform calls our public URL)"
    PERSISTENT = (
        "persistent",
        "Persistent connection (Telegram long polling / Feishu long connection)",
    )


class AccessPolicy(models.TextChoices):
    OPEN = "open", "Anyone"
    ALLOWLIST = "allowlist", "Only listed user ids"
    PAIRING = "pairing", "Listed users, plus users an admin approved by pairing code"


class PairingStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class UnprocessedStatus(models.TextChoices):
    NEW = "new", _("Not processed")
    REPLAYED = "replayed", _("Replayed")
    DISMISSED = "dismissed", _("Dismissed")
