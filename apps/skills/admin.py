from django import forms
from django.contrib import admin
from django.db import transaction
from django.utils.functional import Promise
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from apps.audit.admin import AuditedModelAdmin
from apps.audit.services import audit_config_change, snapshot
from apps.skills.models import SkillInstance
from apps.skills.registry import skill_choices, skill_get
from apps.skills.selectors import config_masked, skill_instance_tools
from apps.skills.services import (
    config_with_kept_secrets,
    skill_instance_create,
    skill_instance_update,
)


class SkillInstanceForm(forms.ModelForm):
    skill = forms.ChoiceField(choices=skill_choices, label=_("skill"))
    config = forms.JSONField(
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80}),
        label=_("configuration"),
        help_text=_(
            "The skill's settings as JSON. Secret settings show as “<set>”; leave them so "
            "to keep them."
        ),
    )

    class Meta:
        model = SkillInstance
        fields = ["bot", "name", "skill", "config", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:  # secrets are never sent to the browser
            self.initial["config"] = config_masked(
                skill=self.instance.skill, config=self.instance.config or {}
            )

    def clean_config(self):
        # A secret shown as "<set>" keeps its stored value; the model's clean() (run by the
        # form) then validates the whole configuration against the skill's schema.
        config = self.cleaned_data.get("config") or {}
        stored = SkillInstance.objects.get(pk=self.instance.pk).config if self.instance.pk else {}
        return config_with_kept_secrets(
            skill_name=self.cleaned_data.get("skill", ""), config=config, stored=stored or {}
        )


@admin.register(SkillInstance)
class SkillInstanceAdmin(AuditedModelAdmin):
    form = SkillInstanceForm
    list_display = ["name", "skill_label", "bot", "enabled", "updated_at"]
    list_filter = ["enabled", "skill", "bot"]
    search_fields = ["name", "skill"]
    list_select_related = ["bot"]
    readonly_fields = ["tools_offered"]

    @admin.display(description=_("tools for models"))
    def tools_offered(self, instance: SkillInstance) -> str | Promise:
        # Asked when the page opens: an MCP server is connected to, so the operator sees
        # that it works (or why not).
        if instance.pk is None:
            return _("Save the skill to see the tools it offers.")
        tools, error = skill_instance_tools(instance=instance)
        if error:
            return format_html("{}<br><code>{}</code>", _("Could not list the tools:"), error)
        if not tools:
            return _("None: this skill is not offered to models.")
        rows = format_html_join(
            "",
            "<li><code>{}</code> {} <small>{}</small>{}</li>",
            (
                (
                    tool["name"] or instance.name,
                    tool.get("description", ""),
                    ", ".join(sorted((tool.get("parameters") or {}).get("properties") or {})),
                    "" if tool["offered"] else format_html(" — <em>{}</em>", _("not offered")),
                )
                for tool in tools
            ),
        )
        return format_html("<ul>{}</ul>", rows)

    @admin.display(description=_("skill"), ordering="skill")
    def skill_label(self, instance: SkillInstance) -> str:
        skill = skill_get(instance.skill)
        return f"{skill.label} ({instance.skill})" if skill else instance.skill

    def save_model(self, request, obj, form, change):
        # Written by the services (validated, secrets kept), recorded like every config edit.
        before = snapshot(SkillInstance.objects.get(pk=obj.pk)) if change else None
        with transaction.atomic():
            if change:
                skill_instance_update(instance=obj)
            else:
                saved = skill_instance_create(
                    bot=obj.bot,
                    name=obj.name,
                    skill=obj.skill,
                    config=obj.config,
                    enabled=obj.enabled,
                )
                obj.pk, obj.created_at, obj.updated_at = (
                    saved.pk,
                    saved.created_at,
                    saved.updated_at,
                )
            audit_config_change(
                request=request,
                instance=obj,
                before=before,
                action="update" if change else "create",
            )
