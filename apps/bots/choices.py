from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.bots.platforms import platform_specs

# The registered platforms (apps/bots/platforms/), e.g. Platform.TELEGRAM == "telegram".
Platform = models.TextChoices(  # type: ignore[call-overload] # built from the registry
    "Platform",
    [(spec.name.upper(), (spec.name, spec.label)) for spec in platform_specs().values()],
)


class GroupTrigger(models.TextChoices):
    MENTION = "mention", _("When @mentioned, replied to, or sent a command")
    ALL = "all", _("Every message")
    KEYWORD = "keyword", _("Messages starting with the keyword")


class EditedMessages(models.TextChoices):
    IGNORE = "ignore", _("Ignore edits")
    ANSWER = "answer", _("Answer the edited text again")


class WhileAnswering(models.TextChoices):
    """What a bot does when the user writes again while an answer to them is streaming."""

    FINISH = "finish", _("Finish the answer, then answer the new message")
    INTERRUPT = "interrupt", _("Stop the answer and answer all the messages together")


class ConnectionMode(models.TextChoices):
    WEBHOOK = "webhook", _("Webhook (the platform calls our public URL)")
    PERSISTENT = (
        "persistent",
        _("Persistent connection (Telegram long polling / Feishu long connection)"),
    )


class AccessPolicy(models.TextChoices):
    OPEN = "open", _("Anyone")
    ALLOWLIST = "allowlist", _("Only listed user ids")
    PAIRING = "pairing", _("Listed users, plus users an admin approved by pairing code")


class PairingStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


class UnprocessedStatus(models.TextChoices):
    NEW = "new", _("Not processed")
    REPLAYED = "replayed", _("Replayed")
    DISMISSED = "dismissed", _("Dismissed")


class ReplyLanguage(models.TextChoices):
    """The language of a bot's own replies (help, refusals, apologies, notices)."""

    AUTO = "auto", _("The user's language (detected per message)")
    # Each language by its own name, as language menus show them.
    ZH_HANS = "zh-hans", "简体中文"
    EN = "en", "English"
