"""Reads of skills: a bot's enabled skills, the one a routing rule runs, masked settings."""

from __future__ import annotations

from typing import Any

from apps.skills.models import SkillInstance
from apps.skills.registry import skill_get

SET_MARKER = "<set>"


def config_masked(*, skill: str, config: dict[str, Any]) -> dict[str, Any]:
    """The configuration with each secret value replaced by "<set>" (or "" when empty)."""
    found = skill_get(skill)
    secrets = found.secret_fields if found is not None else ()
    return {
        key: ((SET_MARKER if value else "") if key in secrets else value)
        for key, value in config.items()
    }


def skill_instance_list():
    """Every skill instance with its bot, in the admin's order."""
    return SkillInstance.objects.select_related("bot")


def bot_skills_enabled(*, bot_id) -> list[SkillInstance]:
    """A bot's enabled skill instances whose skill is installed, by name."""
    return [
        instance
        for instance in SkillInstance.objects.filter(bot_id=bot_id, enabled=True).order_by("name")
        if skill_get(instance.skill) is not None
    ]


def skill_instance_for_rule(
    *, bot_id, skill_instance_id: int | None, skill: str
) -> SkillInstance | None:
    """The skill instance a rule runs for a bot: the one it names (if it is this bot's),
    else the bot's enabled instance of the skill it names (oldest first). None when there
    is none to run: another bot's settings (its keys, its URLs) are never used."""
    if skill_instance_id is not None:
        return SkillInstance.objects.filter(
            pk=skill_instance_id, bot_id=bot_id, enabled=True
        ).first()
    if skill:
        return (
            SkillInstance.objects.filter(bot_id=bot_id, skill=skill, enabled=True)
            .order_by("id")
            .first()
        )
    return None


def skill_instance_tools(*, instance: SkillInstance) -> tuple[list[dict[str, Any]], str]:
    """The tools a configured skill offers models, asked now (an MCP server is connected
    to, not read from the cache), each with "offered" (False: left out by its settings,
    e.g. an MCP skill's `allowed_tools`); and why they could not be listed ("" if they were).
    """
    from apps.skills.base import SkillError

    skill = skill_get(instance.skill)
    if skill is None:
        return [], ""
    config = dict(instance.config or {})
    try:
        # A skill that lists another system's tools (the MCP client) shows all of them,
        # listed now (which also refreshes what it offers models).
        listed = skill.server_tools(config) if hasattr(skill, "server_tools") else None
        offered = skill.tools(config)
    except SkillError as error:
        return [], str(error)
    if listed is None:
        listed = offered
    names = {tool["name"] for tool in offered}
    return [{**tool, "offered": tool["name"] in names} for tool in listed], ""
