from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.bots.choices import Platform
from apps.conversations.choices import AttachmentKind, ChatType
from apps.routing.choices import Action, KeywordMatch, RoutingLanguage


class RoutingRule(models.Model):
    """Which messages get which answer: conditions that must all hold, and one action.

    Rules are tried by priority (lowest number first, then oldest); the first whose
    conditions all hold decides. An empty condition always holds. With no matching rule
    the bot answers with its own model profile.
    """

    name = models.CharField(max_length=100, verbose_name=_("name"))
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    priority = models.PositiveIntegerField(
        default=100,
        db_index=True,
        help_text=_("Lower numbers are tried first; the first matching rule answers."),
        verbose_name=_("priority"),
    )
    bots = models.ManyToManyField(
        "bots.Bot",
        blank=True,
        related_name="routing_rules",
        help_text=_("The bots this rule applies to; none means every bot."),
        verbose_name=_("bots"),
    )

    # Conditions: all must hold; an empty one always does.
    platform = models.CharField(
        max_length=16, choices=Platform.choices, blank=True, verbose_name=_("platform")
    )
    chat_type = models.CharField(
        max_length=16, choices=ChatType.choices, blank=True, verbose_name=_("chat type")
    )
    chat_ids = models.JSONField(
        default=list,
        blank=True,
        help_text=_("The platform's chat ids, one per line; empty means any chat."),
        verbose_name=_("chat IDs"),
    )
    user_ids = models.JSONField(
        default=list,
        blank=True,
        help_text=_("The platform's user ids of the sender, one per line; empty means anyone."),
        verbose_name=_("user IDs"),
    )
    keywords = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            "One per line, case-insensitive. Latin words match whole words (“order” not "
            "in “border”); Chinese matches anywhere in the text (“订单”)."
        ),
        verbose_name=_("keywords"),
    )
    keyword_match = models.CharField(
        max_length=8,
        choices=KeywordMatch.choices,
        default=KeywordMatch.ANY,
        verbose_name=_("keyword match"),
    )
    pattern = models.CharField(
        max_length=500,
        blank=True,
        help_text=_(
            "A regular expression (RE2 syntax: no backreferences or lookarounds, always "
            "fast) searched in the text; (?i) makes it case-insensitive."
        ),
        verbose_name=_("regular expression"),
    )
    command = models.CharField(
        max_length=32,
        blank=True,
        help_text=_("A command the message starts with, e.g. /order."),
        verbose_name=_("command"),
    )
    attachment_kind = models.CharField(
        max_length=16,
        choices=AttachmentKind.choices,
        blank=True,
        help_text=_("The message has an attachment of this kind."),
        verbose_name=_("attachment"),
    )
    language = models.CharField(
        max_length=8,
        choices=RoutingLanguage.choices,
        blank=True,
        help_text=_("The language the message is written in (told from its writing system)."),
        verbose_name=_("language"),
    )
    active_from = models.TimeField(
        null=True,
        blank=True,
        help_text=_("With “active until”: a daily time window, e.g. 09:00–18:00."),
        verbose_name=_("active from"),
    )
    active_until = models.TimeField(
        null=True,
        blank=True,
        help_text=_(
            "The end of the window (not included); before “active from” it spans midnight."
        ),
        verbose_name=_("active until"),
    )
    weekdays = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Days the rule applies, 1 = Monday … 7 = Sunday; empty means every day."),
        verbose_name=_("weekdays"),
    )
    time_zone = models.CharField(
        max_length=64,
        default=settings.TIME_ZONE,
        help_text=_("The time zone of the window and weekdays, e.g. Asia/Shanghai."),
        verbose_name=_("time zone"),
    )

    # The action.
    action = models.CharField(
        max_length=16, choices=Action.choices, default=Action.PROFILE, verbose_name=_("action")
    )
    profile = models.ForeignKey(
        "providers.ModelProfile",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Answer with this profile; empty means the bot's own profile."),
        verbose_name=_("profile"),
    )
    extra_system_prompt = models.TextField(
        blank=True,
        help_text=_("Added after the profile's system prompt for these messages."),
        verbose_name=_("extra system prompt"),
    )
    reply_template = models.TextField(
        blank=True,
        help_text=_(
            "The fixed reply, or the notice sent when handing off to staff. Placeholders: "
            "{user_name}, {user_id}, {chat_id}, {bot_name}, {text}."
        ),
        verbose_name=_("reply template"),
    )
    skill = models.CharField(
        max_length=100,
        blank=True,
        help_text=_(
            "The skill to run, by name (a built-in or an installed one) when no configured "
            "skill is chosen below."
        ),
        verbose_name=_("skill"),
    )
    skill_instance = models.ForeignKey(
        "skills.SkillInstance",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="routing_rules",
        help_text=_("The configured skill to run; or name a skill above to run the bot's own."),
        verbose_name=_("configured skill"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("routing rule")
        verbose_name_plural = _("routing rules")
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from apps.routing.rules import rule_validate

        rule_validate(rule=self)
