"""Which skills exist: the built-ins and those that installed packages declare.

A package adds skills with an entry point in the `assistant.skills` group whose object
is a `Skill` subclass, e.g. in its pyproject.toml:

    [project.entry-points."assistant.skills"]
    shout = "assistant_skill_example:ShoutSkill"

Discovery runs once per process (`skill_registry()`); a skill that fails to load is
logged and left out, never taking the others down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache, partial
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from apps.skills.base import Skill

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "assistant.skills"
BUILTINS = (
    "apps.skills.builtins.help_menu:HelpMenuSkill",
    "apps.skills.builtins.http_action:HttpActionSkill",
    "apps.skills.builtins.mcp_client:McpSkill",
)


def _load(reference: str) -> type[Skill]:
    module_name, _, attribute = reference.partition(":")
    return getattr(import_module(module_name), attribute)


def skills_discover() -> dict[str, Skill]:
    """Every skill by name, built-ins first; a package cannot replace a built-in."""
    found: dict[str, Skill] = {}
    candidates: list[tuple[str, Callable[[], Any]]] = [
        (reference, partial(_load, reference)) for reference in BUILTINS
    ]
    candidates += [
        (f"{entry.value} ({entry.name})", entry.load)
        for entry in entry_points(group=ENTRY_POINT_GROUP)
    ]
    for origin, load in candidates:
        try:
            skill_class = load()
            if not (isinstance(skill_class, type) and issubclass(skill_class, Skill)):
                raise TypeError("not a Skill subclass")
            if not skill_class.name:
                raise TypeError("the skill has no name")
            skill = skill_class()
        except Exception:  # noqa: BLE001 - a broken package must not take the others down
            logger.exception("skill %s could not be loaded; left out", origin)
            continue
        if skill.name in found:
            logger.warning("skill %s: the name %r is taken; left out", origin, skill.name)
            continue
        found[skill.name] = skill
    return found


@cache
def skill_registry() -> dict[str, Skill]:
    """The skills of this process, discovered once (see `skills_discover`)."""
    return skills_discover()


def skill_get(name: str) -> Skill | None:
    """The skill called `name`, or None when no installed skill has that name."""
    return skill_registry().get(name)


def skill_choices() -> list[tuple[str, str]]:
    """(name, label) of every skill, for forms."""
    return [(name, f"{skill.label} ({name})") for name, skill in sorted(skill_registry().items())]
