"""Writes of skill instances, and running a skill within its time limit.

The admin and the API save through `skill_instance_create` / `skill_instance_update`,
which validate the configuration against the skill's JSON Schema. A secret left as
"<set>" (how forms show it) keeps its stored value.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from apps.skills.base import Skill, SkillContext, SkillError, SkillResult
from apps.skills.models import SkillInstance
from apps.skills.registry import skill_get
from apps.skills.selectors import SET_MARKER, skill_instance_for_rule

logger = logging.getLogger(__name__)

# Skills run here, so a turn can stop waiting for one that overruns its time limit.
# Each run is I/O-bound (an HTTP call, a query); a few threads serve a worker's turns.
_runner = ThreadPoolExecutor(max_workers=8, thread_name_prefix="skill")


def skill_instance_validate(*, instance: SkillInstance) -> None:
    """Raise ValidationError when the skill is not installed or its configuration invalid."""
    skill = skill_get(instance.skill)
    if skill is None:
        raise ValidationError({"skill": _("No installed skill is called “%s”.") % instance.skill})
    if not isinstance(instance.config, dict):
        raise ValidationError({"config": _("The configuration is a JSON object.")})
    errors = skill.config_errors(instance.config)
    if errors:
        raise ValidationError({"config": [_("Invalid configuration: %s") % e for e in errors]})


def config_with_kept_secrets(
    *, skill_name: str, config: dict[str, Any], stored: dict[str, Any]
) -> dict[str, Any]:
    """`config` with each secret given as "<set>" (how forms show it) back to its stored value."""
    skill = skill_get(skill_name)
    if skill is None or not isinstance(config, dict):
        return config
    kept = dict(config)
    for key in skill.secret_fields:
        if kept.get(key) == SET_MARKER:
            if key in stored:
                kept[key] = stored[key]
            else:
                kept.pop(key)
    return kept


@transaction.atomic
def skill_instance_create(
    *, bot, name: str, skill: str, config: dict[str, Any] | None = None, enabled: bool = True
) -> SkillInstance:
    """Create a validated skill instance for `bot` (ValidationError when it cannot work)."""
    instance = SkillInstance(bot=bot, name=name, skill=skill, config=config or {}, enabled=enabled)
    instance.full_clean()
    instance.save()
    return instance


@transaction.atomic
def skill_instance_update(*, instance: SkillInstance, **fields: Any) -> SkillInstance:
    """Change a skill instance, validated like a new one; secrets given as "<set>" are kept."""
    stored = dict(instance.config or {})
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.config = config_with_kept_secrets(
        skill_name=instance.skill, config=instance.config, stored=stored
    )
    instance.full_clean()
    instance.save()
    return instance


def skill_for_rule(
    *, bot, skill_instance_id: int | None, skill: str
) -> tuple[Skill, dict[str, Any], SkillInstance | None] | None:
    """The skill a routing rule runs for `bot`, its configuration and instance (if any).

    A rule naming only a skill runs the bot's enabled instance of it, or else the skill
    with an empty configuration when its schema allows one. None: nothing can run.
    """
    instance = skill_instance_for_rule(
        bot_id=bot.pk, skill_instance_id=skill_instance_id, skill=skill
    )
    if instance is not None:
        found = skill_get(instance.skill)
        return (found, dict(instance.config or {}), instance) if found is not None else None
    found = skill_get(skill) if skill and skill_instance_id is None else None
    if found is None or found.config_errors({}):
        return None
    return found, {}, None


def skill_execute(*, skill: Skill, context: SkillContext) -> SkillResult:
    """Run `skill.handle(context)`, waiting at most its time limit.

    Raises SkillError for every failure (the skill's own, a crash, an overrun), so the
    caller answers the user and records it the same way.
    """
    return _execute(skill, context, _handle, skill.run_time_limit(context.config))


def skill_tool_execute(
    *, skill: Skill, context: SkillContext, time_limit: float | None = None
) -> SkillResult:
    """Run the tool a model called, `skill.call_tool(context)`, waiting at most the skill's
    time limit (or `time_limit`, when the turn has less time left). Fails like
    `skill_execute`."""
    limit = skill.run_time_limit(context.config)
    if time_limit is not None and time_limit < limit:
        return _execute(
            skill, context, _call_tool, time_limit, why=" (the time left for tools in this answer)"
        )
    return _execute(skill, context, _call_tool, limit)


def _execute(
    skill: Skill, context: SkillContext, run, limit: float, *, why: str = ""
) -> SkillResult:
    future = _runner.submit(run, skill, context)
    try:
        result = future.result(timeout=limit)
    except FutureTimeout as error:
        future.cancel()
        raise SkillError(
            f"skill {skill.name} did not answer within {limit:.3g}s{why}", retryable=True
        ) from error
    except SkillError:
        raise
    except Exception as error:  # noqa: BLE001 - any crash of a (third-party) skill
        logger.exception("skill %s failed", skill.name)
        raise SkillError(f"skill {skill.name} failed: {error!r}") from error
    if not isinstance(result, SkillResult) or not isinstance(result.text, str):
        raise SkillError(f"skill {skill.name} answered {result!r}, not a SkillResult")
    return result


def _handle(skill: Skill, context: SkillContext) -> SkillResult:
    try:
        with translation.override(context.language or None):
            return skill.handle(context)
    finally:
        connections.close_all()  # this thread's only: a skill that queried the database


def _call_tool(skill: Skill, context: SkillContext) -> SkillResult:
    try:
        with translation.override(context.language or None):
            return skill.call_tool(context)
    finally:
        connections.close_all()
