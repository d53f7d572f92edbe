from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.bots.choices import Platform
from apps.conversations.choices import AttachmentKind, ChatType
from apps.routing.choices import (
    Action,
    KeywordMatch,
    ReleaseEvent,
    ReleaseState,
    RoutingLanguage,
)


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


class Variant(models.Model):
    """One arm of an A/B split: a share (weight) of a rule's or a bot's conversations that
    is answered with this variant's model profile, or by its configured skill.

    A variant belongs to a rule (the rule answers with a profile) or to a bot (its default
    answer, when no rule matches). A conversation keeps its variant: it is chosen by a
    hash of the conversation and the rule or bot (apps/routing/variants.py).
    """

    rule = models.ForeignKey(
        RoutingRule,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="variants",
        help_text=_("The rule whose answers are split; empty: the bot's default answers."),
        verbose_name=_("routing rule"),
    )
    bot = models.ForeignKey(
        "bots.Bot",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="variants",
        help_text=_("The bot whose default answers (no rule matched) are split."),
        verbose_name=_("bot"),
    )
    name = models.CharField(
        max_length=64,
        help_text=_("Recorded on every answer it gives, e.g. “control” or “large-model”."),
        verbose_name=_("name"),
    )
    weight = models.PositiveIntegerField(
        default=1,
        help_text=_("Its share is its weight over the sum of the weights; 0: no conversations."),
        verbose_name=_("weight"),
    )
    profile = models.ForeignKey(
        "providers.ModelProfile",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Answer with this model profile; or choose a configured skill below."),
        verbose_name=_("profile"),
    )
    skill_instance = models.ForeignKey(
        "skills.SkillInstance",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="variants",
        help_text=_(
            "Answer by running this configured skill (one of the bot's) instead of a model."
        ),
        verbose_name=_("configured skill"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        ordering = ["rule_id", "bot_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rule__isnull=False, bot__isnull=True)
                | models.Q(rule__isnull=True, bot__isnull=False),
                name="variant_of_a_rule_or_a_bot",
            ),
            models.CheckConstraint(
                condition=models.Q(profile__isnull=False, skill_instance__isnull=True)
                | models.Q(profile__isnull=True, skill_instance__isnull=False),
                name="variant_a_profile_or_a_skill",
            ),
            models.UniqueConstraint(fields=["rule", "name"], name="variant_name_per_rule"),
            models.UniqueConstraint(fields=["bot", "name"], name="variant_name_per_bot"),
        ]

    def __str__(self) -> str:
        return f"{self.owner_label()} · {self.name}"

    def owner_label(self) -> str:
        if self.rule_id is not None:
            return str(self.rule)
        return str(self.bot)

    def answers_with(self) -> str:
        """The profile's name, or the configured skill's."""
        if self.skill_instance_id is not None:
            return str(self.skill_instance)
        return str(self.profile) if self.profile_id is not None else ""

    def clean(self) -> None:
        from apps.routing.variants import variant_validate

        variant_validate(variant=self)


class Release(models.Model):
    """A gray release: a variant's share of its rule's (or bot's) conversations grows step by
    step (e.g. 5 % → 20 % → 100 %) after a minimum sample at each step, and goes back to the
    control when its error or negative-feedback rate exceeds the thresholds.
    """

    name = models.CharField(max_length=100, verbose_name=_("name"))
    # Deleting a variant (or its rule or bot) deletes its releases; the audit log keeps
    # their steps.
    variant = models.ForeignKey(
        Variant,
        on_delete=models.CASCADE,
        related_name="releases",
        help_text=_("The variant under release."),
        verbose_name=_("variant"),
    )
    control = models.ForeignKey(
        Variant,
        on_delete=models.CASCADE,
        related_name="+",
        help_text=_(
            "The variant it replaces (same rule or bot): it answers the rest of their "
            "conversations, and all of them after a rollback."
        ),
        verbose_name=_("control"),
    )
    steps = models.JSONField(
        default=list,
        help_text=_("Percentages of the conversations, rising, ending at 100, e.g. 5, 20, 100."),
        verbose_name=_("steps"),
    )
    min_sample = models.PositiveIntegerField(
        default=100,
        help_text=_("Answers the variant must give at a step before it moves on."),
        verbose_name=_("minimum sample per step"),
    )
    max_error_rate = models.FloatField(
        default=0.05,
        help_text=_("Roll back when more than this share of its answers fail (0–1)."),
        verbose_name=_("maximum error rate"),
    )
    max_negative_rate = models.FloatField(
        default=0.2,
        help_text=_("Roll back when more than this share of its answers are rated 👎 (0–1)."),
        verbose_name=_("maximum negative-feedback rate"),
    )
    state = models.CharField(
        max_length=16,
        choices=ReleaseState.choices,
        default=ReleaseState.RUNNING,
        verbose_name=_("state"),
    )
    current_step = models.PositiveIntegerField(
        default=0, help_text=_("Index into the steps (0: the first)."), verbose_name=_("step")
    )
    step_started_at = models.DateTimeField(
        default=timezone.now,
        help_text=_("Answers given since then count towards this step's sample."),
        verbose_name=_("step started at"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("release")
        verbose_name_plural = _("releases")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def percent(self) -> int:
        """The variant's share (percent of the pair's conversations) at the current step."""
        if not self.steps:
            return 0
        return int(self.steps[min(self.current_step, len(self.steps) - 1)])

    def clean(self) -> None:
        from apps.routing.variants import release_validate

        release_validate(release=self)


class ReleaseStep(models.Model):
    """One line of a release's history: started, advanced, paused, completed, rolled back."""

    release = models.ForeignKey(
        Release, on_delete=models.CASCADE, related_name="history", verbose_name=_("release")
    )
    event = models.CharField(max_length=16, choices=ReleaseEvent.choices, verbose_name=_("event"))
    percent = models.PositiveIntegerField(verbose_name=_("percent"))
    answers = models.PositiveIntegerField(default=0, verbose_name=_("answers"))
    errors = models.PositiveIntegerField(default=0, verbose_name=_("errors"))
    negative = models.PositiveIntegerField(default=0, verbose_name=_("rated 👎"))
    reason = models.CharField(max_length=300, blank=True, verbose_name=_("reason"))
    at = models.DateTimeField(default=timezone.now, verbose_name=_("at"))

    class Meta:
        verbose_name = _("release step")
        verbose_name_plural = _("release steps")
        ordering = ["release_id", "id"]

    def __str__(self) -> str:
        return f"{self.release} · {self.get_event_display()} · {self.percent} %"
