from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.audit.admin import AuditedModelAdmin, _AuditedRelationsMixin
from apps.audit.services import client_ip
from apps.bots.choices import Platform
from apps.bots.models import Bot
from apps.conversations.choices import AttachmentKind, ChatType
from apps.conversations.models import Conversation
from apps.routing.choices import Action, Failure
from apps.routing.engine import explain
from apps.routing.models import Release, ReleaseStep, RoutingRule, Variant
from apps.routing.rules import (
    ATTACHMENT,
    BOT,
    CHAT_ID,
    CHAT_TYPE,
    COMMAND,
    KEYWORDS,
    LANGUAGE,
    PATTERN,
    PLATFORM,
    TIME,
    USER_ID,
    RoutingInput,
)
from apps.routing.services import release_pause, release_resume, release_start
from apps.skills.models import SkillInstance

WEEKDAYS = [
    (1, _("Monday")),
    (2, _("Tuesday")),
    (3, _("Wednesday")),
    (4, _("Thursday")),
    (5, _("Friday")),
    (6, _("Saturday")),
    (7, _("Sunday")),
]


class LinesField(forms.CharField):
    """A list of texts edited one per line."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        return [line.strip() for line in (text or "").splitlines() if line.strip()]


class RoutingRuleForm(forms.ModelForm):
    chat_ids = LinesField(required=False, label=_("chat IDs"))
    user_ids = LinesField(required=False, label=_("user IDs"))
    keywords = LinesField(required=False, label=_("keywords"))
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("weekdays"),
        help_text=_("None checked means every day."),
    )

    class Meta:
        model = RoutingRule
        fields = "__all__"  # noqa: DJ007 - the admin's fieldsets choose what is shown

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("chat_ids", "user_ids", "keywords"):
            self.fields[name].help_text = getattr(
                RoutingRule._meta.get_field(name), "help_text", ""
            )


@admin.register(RoutingRule)
class RoutingRuleAdmin(_AuditedRelationsMixin, AuditedModelAdmin):
    form = RoutingRuleForm
    audited_relations = ("bots",)
    list_display = ["priority", "name", "enabled", "action", "target", "applies_to", "conditions"]
    list_display_links = ["name"]
    list_editable = ["priority", "enabled"]
    list_filter = ["enabled", "action", "platform", "bots"]
    search_fields = ["name", "keywords", "pattern", "command"]
    ordering = ["priority", "id"]
    filter_horizontal = ["bots"]
    autocomplete_fields = ["profile", "skill_instance"]
    fieldsets = [
        (None, {"fields": ["name", "enabled", "priority", "bots"]}),
        (
            _("Conditions"),
            {
                "fields": [
                    "platform",
                    "chat_type",
                    "chat_ids",
                    "user_ids",
                    "keywords",
                    "keyword_match",
                    "pattern",
                    "command",
                    "attachment_kind",
                    "language",
                    ("active_from", "active_until"),
                    "weekdays",
                    "time_zone",
                ],
                "description": _("Every condition filled in must hold; empty ones always do."),
            },
        ),
        (
            _("Action"),
            {
                "fields": [
                    "action",
                    "profile",
                    "extra_system_prompt",
                    "reply_template",
                    "skill",
                    "skill_instance",
                ]
            },
        ),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("profile", "skill_instance")
            .prefetch_related("bots")
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "explain_url": reverse("admin:routing_routingrule_explain"),
        }
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("answers with"))
    def target(self, rule: RoutingRule) -> str | Promise:
        if rule.action == "profile":
            return rule.profile.name if rule.profile else _("the bot's profile")
        if rule.action == "skill":
            return str(rule.skill_instance) if rule.skill_instance else rule.skill
        return rule.reply_template[:60] if rule.reply_template else "—"

    @admin.display(description=_("bots"))
    def applies_to(self, rule: RoutingRule) -> str | Promise:
        return ", ".join(bot.name for bot in rule.bots.all()) or _("every bot")

    @admin.display(description=_("conditions"))
    def conditions(self, rule: RoutingRule) -> str | Promise:
        parts: list[str | Promise] = []
        if rule.platform:
            parts.append(rule.get_platform_display())
        if rule.chat_type:
            parts.append(rule.get_chat_type_display())
        if rule.command:
            parts.append("/" + rule.command.lstrip("/"))
        if rule.keywords:
            parts.append(", ".join(rule.keywords)[:60])
        if rule.pattern:
            parts.append(f"/{rule.pattern[:40]}/")
        if rule.chat_ids or rule.user_ids:
            parts.append(_("chosen chats or users"))
        if rule.attachment_kind:
            parts.append(rule.get_attachment_kind_display())
        if rule.language:
            parts.append(rule.get_language_display())
        if rule.active_from is not None or rule.weekdays:
            parts.append(_("time window"))
        return " · ".join(str(part) for part in parts) or _("every message")

    def get_urls(self):
        return [
            path(
                "explain/",
                self.admin_site.admin_view(self.explain_view),
                name="routing_routingrule_explain",
            ),
            *super().get_urls(),
        ]

    def explain_view(self, request):
        """Which rule answers this? A typed message, its decision, why earlier rules missed."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = ExplainForm(request.GET if "text" in request.GET else None)
        result = None
        if form.is_valid():
            result = _explanation(form.cleaned_data)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Which rule answers this?"),
            "form": form,
            "result": result,
        }
        return TemplateResponse(request, "admin/routing/routingrule/explain.html", context)


class ExplainForm(forms.Form):
    bot = forms.ModelChoiceField(queryset=Bot.objects.order_by("name"), label=_("bot"))
    platform = forms.ChoiceField(
        choices=[("", _("the bot's platform")), *Platform.choices],
        required=False,
        label=_("platform"),
    )
    chat_type = forms.ChoiceField(
        choices=ChatType.choices, initial=ChatType.PRIVATE, label=_("chat type")
    )
    chat_id = forms.CharField(required=False, max_length=128, label=_("chat ID"))
    user_id = forms.CharField(required=False, max_length=128, label=_("user ID"))
    attachment_kind = forms.ChoiceField(
        choices=[("", _("none")), *AttachmentKind.choices], required=False, label=_("attachment")
    )
    at = forms.DateTimeField(
        required=False,
        label=_("at"),
        help_text=_("When the message arrives (empty: now), in the site's time zone."),
    )
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label=_("text"))


MISSED = {
    BOT: _("it applies to other bots"),
    PLATFORM: _("it is only for %(platform)s"),
    CHAT_TYPE: _("it is only for %(chat_type)s chats"),
    CHAT_ID: _("the chat is not one of its chat IDs"),
    USER_ID: _("the sender is not one of its user IDs"),
    COMMAND: _("the message does not start with /%(command)s"),
    ATTACHMENT: _("the message has no %(attachment)s attachment"),
    KEYWORDS: _("its keywords are not in the text"),
    PATTERN: _("its regular expression does not match"),
    LANGUAGE: _("the message is not written in %(language)s"),
    TIME: _("it is outside its time window or weekdays"),
}


def _explanation(data: dict) -> dict:
    bot = data["bot"]
    chat_id = data["chat_id"] or data["user_id"] or "explain"
    item = RoutingInput(
        bot_id=str(bot.pk),
        platform=data["platform"] or bot.platform,
        chat_type=data["chat_type"],
        chat_id=chat_id,
        user_id=data["user_id"],
        text=data["text"],
        now=data["at"] or timezone.now(),
        attachment_kinds=frozenset([data["attachment_kind"]])
        if data["attachment_kind"]
        else frozenset(),
        bot_name=bot.name,
    )
    # The chat's open conversation, if it has one: staff may hold it, and it keeps its
    # A/B variant (without one, the chat stands for the conversation).
    conversation = (
        Conversation.objects.filter(bot=bot, chat_id=chat_id, closed_at__isnull=True)
        .only("pk", "handled_by_id", "taken_over_at")
        .first()
    )
    if conversation is not None:
        item.conversation_id = conversation.pk
    explanation = explain(bot=bot, item=item, conversation=conversation)
    rules = {rule.pk: rule for rule in RoutingRule.objects.filter(pk__in=_rule_ids(explanation))}
    skipped = []
    for compiled, missed in explanation.skipped:
        rule = rules.get(compiled.id)
        values = {
            "platform": rule.get_platform_display() if rule else "",
            "chat_type": rule.get_chat_type_display() if rule else "",
            "command": compiled.command,
            "attachment": rule.get_attachment_kind_display() if rule else "",
            "language": rule.get_language_display() if rule else "",
        }
        skipped.append(
            {
                "rule": rule,
                "name": compiled.name,
                "priority": compiled.priority,
                "url": reverse("admin:routing_routingrule_change", args=[compiled.id]),
                "why": MISSED[missed] % values,
            }
        )
    decision = explanation.decision
    skill = None
    if decision.skill_instance_id is not None:
        skill = SkillInstance.objects.filter(pk=decision.skill_instance_id).first()
    return {
        "skipped": skipped,
        "decision": decision,
        "action": Action(decision.action).label,
        "failure": Failure(decision.failure).label if decision.failure else "",
        "skill": str(skill) if skill else decision.skill,
        "conversation": conversation,
        "conversation_url": reverse("console-conversation", args=[conversation.pk])
        if conversation is not None
        else "",
        "rule": rules.get(decision.rule_id) if decision.rule_id is not None else None,
        "rule_link": format_html(
            '<a href="{}">{}</a>',
            reverse("admin:routing_routingrule_change", args=[decision.rule_id]),
            decision.rule_name,
        )
        if decision.rule_id
        else "",
    }


def _rule_ids(explanation) -> list[int]:
    ids = [rule.id for rule, _missed in explanation.skipped]
    if explanation.decision.rule_id:
        ids.append(explanation.decision.rule_id)
    return ids


@admin.register(Variant)
class VariantAdmin(AuditedModelAdmin):
    list_display = ["name", "owner", "weight", "answers_with", "updated_at"]
    list_filter = ["rule", "bot"]
    search_fields = ["name", "rule__name", "bot__name"]
    autocomplete_fields = ["profile", "skill_instance"]
    fields = ["rule", "bot", "name", "weight", "profile", "skill_instance"]

    def get_queryset(self, request):
        return (
            super().get_queryset(request).select_related("rule", "bot", "profile", "skill_instance")
        )

    @admin.display(description=_("rule or bot"))
    def owner(self, variant: Variant) -> str:
        return variant.owner_label()

    @admin.display(description=_("answers with"))
    def answers_with(self, variant: Variant) -> str:
        return variant.answers_with()


class StepsField(forms.CharField):
    """A release's percentages typed as "5, 20, 100"."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(str(item) for item in value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        try:
            return [int(part) for part in text.replace("，", ",").split(",") if part.strip()]
        except ValueError as error:
            raise forms.ValidationError(_("Whole numbers separated by commas.")) from error


class ReleaseForm(forms.ModelForm):
    steps = StepsField(
        label=_("steps"),
        initial="5, 20, 100",
        help_text=Release._meta.get_field("steps").help_text,
    )

    class Meta:
        model = Release
        fields = "__all__"  # noqa: DJ007 - the admin's fields choose what is shown


class ReleaseStepInline(admin.TabularInline):
    model = ReleaseStep
    extra = 0
    can_delete = False
    fields = ("at", "event", "percent", "answers", "errors", "negative", "reason")
    readonly_fields = fields
    verbose_name_plural = _("history")

    def has_view_permission(self, request, obj=None) -> bool:
        # The history is part of the release: whoever may see the release sees it.
        return request.user.has_perm("routing.view_release")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Release)
class ReleaseAdmin(AuditedModelAdmin):
    form = ReleaseForm
    list_display = ["name", "variant", "control", "state", "share", "step_started_at"]
    list_filter = ["state"]
    search_fields = ["name", "variant__name", "control__name"]
    fields = [
        "name",
        "variant",
        "control",
        "steps",
        "min_sample",
        "max_error_rate",
        "max_negative_rate",
        "state",
        "current_step",
        "step_started_at",
    ]
    readonly_fields = ["state", "current_step", "step_started_at"]
    inlines = [ReleaseStepInline]
    actions = ["pause_releases", "resume_releases"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("variant__rule", "variant__bot", "control__rule", "control__bot")
        )

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if not change:
                release_start(release=obj, actor=request.user, ip_address=client_ip(request))

    @admin.display(description=_("variant's share"))
    def share(self, release: Release) -> str:
        return f"{release.percent} %"

    @admin.action(description=_("Pause the selected releases"), permissions=["change"])
    def pause_releases(self, request, queryset):
        paused = sum(
            release_pause(release=release, actor=request.user, ip_address=client_ip(request))
            for release in queryset
        )
        self.message_user(
            request,
            ngettext("%(count)d release paused.", "%(count)d releases paused.", paused)
            % {"count": paused},
        )

    @admin.action(description=_("Resume the selected releases"), permissions=["change"])
    def resume_releases(self, request, queryset):
        resumed = sum(
            release_resume(release=release, actor=request.user, ip_address=client_ip(request))
            for release in queryset
        )
        self.message_user(
            request,
            ngettext("%(count)d release resumed.", "%(count)d releases resumed.", resumed)
            % {"count": resumed},
        )
