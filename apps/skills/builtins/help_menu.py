"""help_menu: tell the user what this bot can do, from its enabled rules and skills."""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext, gettext_lazy

from apps.skills.base import Skill, SkillContext, SkillResult


class HelpMenuSkill(Skill):
    """Lists the commands and keywords of the bot's enabled rules, and its enabled skills."""

    name = "help_menu"
    label = gettext_lazy("Help menu")
    description = gettext_lazy(
        "Answers with what this bot can do: its rules' commands and keywords, and its skills."
    )
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "title": {"type": "string"},
            "footer": {"type": "string"},
        },
    }

    def handle(self, context: SkillContext) -> SkillResult:
        from apps.routing.choices import Action
        from apps.routing.models import RoutingRule
        from apps.skills.selectors import bot_skills_enabled

        bot_id = context.bot.pk
        rules = (
            RoutingRule.objects.filter(enabled=True)
            .filter(Q(bots=None) | Q(bots=bot_id))
            .exclude(action=Action.IGNORE)
            .distinct()
            .order_by("priority", "id")
        )
        lines = []
        for rule in rules:
            triggers = []
            if rule.command:
                triggers.append("/" + rule.command.lstrip("/"))
            triggers += rule.keywords
            if triggers:
                lines.append(f"• {', '.join(triggers)} — {rule.name}")
        for instance in bot_skills_enabled(bot_id=bot_id):
            if instance.skill != self.name:
                lines.append(f"• {instance.name}")
        title = context.config.get("title") or gettext("Here is what I can do:")
        if not lines:
            lines.append(gettext("Just write to me: I answer questions."))
        parts = [title, *lines]
        if context.config.get("footer"):
            parts.append(context.config["footer"])
        return SkillResult(text="\n".join(parts))
