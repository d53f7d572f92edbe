"""A bot's skills as tools a model may call: their names and descriptions, and running a call.

Each enabled skill instance of the bot offers the tools its skill describes (`Skill.tools`:
http_action when it has a `tool_description`, an MCP server's tools). A tool is offered
under a function name valid for OpenAI (`^[a-zA-Z0-9_-]{1,64}$`) and unique in the bot's
toolbox, made from the instance's name (and the skill's own name for the tool, when it
offers several); the name maps back to the instance, its settings and the skill's tool.
The model client runs the loop (apps/providers/tool_loop.py); `TurnTools` is what it runs
a call through in a turn.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import jsonschema

from apps.core.aio import process_loop
from apps.core.masking import mask_personal_data
from apps.providers.tool_loop import ToolOutcome
from apps.skills.base import Skill, SkillContext, SkillError
from apps.skills.registry import skill_get
from apps.skills.selectors import bot_skills_enabled
from apps.skills.services import skill_tool_execute

if TYPE_CHECKING:
    from apps.skills.models import SkillInstance

logger = logging.getLogger(__name__)

FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
NAME_LIMIT = 64
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True)
class Tool:
    """One tool as offered to models, and what runs it: a skill instance's skill and settings."""

    name: str  # the function name the model calls
    description: str
    parameters: dict[str, Any]
    skill: Skill
    config: dict[str, Any]
    instance_id: int
    instance_name: str
    tool_name: str  # the skill's own name for it ("" for a skill's only tool)

    def spec(self) -> dict[str, Any]:
        """The tool as the chat completions API's `tools` list takes it."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class Toolbox:
    """The tools of one bot, by function name."""

    def __init__(self, tools: list[Tool]) -> None:
        self.tools = {tool.name: tool for tool in tools}

    def __len__(self) -> int:
        return len(self.tools)

    @property
    def specs(self) -> list[dict[str, Any]]:
        return [tool.spec() for tool in self.tools.values()]

    def call(
        self, name: str, arguments: str, context: SkillContext, *, time_limit: float | None = None
    ) -> ToolOutcome:
        """Run the tool `name` with the model's `arguments` (JSON text) for `context`'s user.

        Blocking (an outside system may take the skill's whole time limit). Never raises:
        a wrong name, arguments that are not a JSON object or do not fit the tool's schema,
        and the skill's own failures are outcomes with an `error`, and their text tells the
        model what went wrong (and what the user should be told, if the skill says so).
        """
        tool = self.tools.get(name)
        if tool is None:
            return _refused(f"there is no tool called {name!r}")
        try:
            parsed = json.loads(arguments) if arguments.strip() else {}
        except ValueError as error:
            return _refused(f"the arguments are not valid JSON ({error})", tool)
        if not isinstance(parsed, dict):
            return _refused("the arguments must be a JSON object", tool)
        problems = _argument_errors(tool.parameters, parsed)
        if problems:
            return _refused("invalid arguments: " + "; ".join(problems), tool)
        run = replace(context, config=tool.config, arguments=parsed, tool_name=tool.tool_name)
        details = _details(tool)
        try:
            result = skill_tool_execute(skill=tool.skill, context=run, time_limit=time_limit)
        except SkillError as failure:
            told = str(failure.user_message or "")
            return ToolOutcome(
                text=f"error: the tool failed: {failure}"
                + (f"\nWhat the user should be told: {told}" if told else ""),
                error=f"skill failed: {failure}",
                details={**details, **failure.details},
            )
        return ToolOutcome(text=result.text, details={**details, **result.details})


def _details(tool: Tool) -> dict[str, Any]:
    return {
        "skill": tool.skill.name,
        "skill_instance_id": tool.instance_id,
        "skill_instance": tool.instance_name,
    }


def _refused(reason: str, tool: Tool | None = None) -> ToolOutcome:
    return ToolOutcome(
        text=f"error: {reason}", error=reason, details=_details(tool) if tool is not None else {}
    )


def _argument_errors(schema: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
    try:
        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(arguments), key=lambda error: list(error.path))
    except jsonschema.SchemaError:
        return []  # a tool whose own schema is broken takes what the model sends
    return [
        ("/".join(str(part) for part in error.path) + ": " if error.path else "") + error.message
        for error in errors
    ]


def _slug(text: str) -> str:
    """`text` in the characters a function name may have: "Open a ticket" → "open_a_ticket"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-zA-Z0-9_-]+", "_", ascii_text).strip("_-").lower()


def _unique(base: str, taken: set[str]) -> str:
    name = base[:NAME_LIMIT]
    number = 2
    while name in taken:
        suffix = f"_{number}"
        name = base[: NAME_LIMIT - len(suffix)] + suffix
        number += 1
    taken.add(name)
    return name


def toolbox_build(instances: list[SkillInstance]) -> Toolbox:
    """The tools these skill instances offer (in their order), under unique function names.

    Calls each skill's `tools()`, which may ask an outside server (an MCP skill lists its
    server's tools): a skill that fails to describe its tools offers none (logged).
    """
    tools: list[Tool] = []
    taken: set[str] = set()
    for instance in instances:
        skill = skill_get(instance.skill)
        if skill is None:
            continue
        config = dict(instance.config or {})
        try:
            described = skill.tools(config)
        except Exception:  # noqa: BLE001 - one skill's failure must not take the others' tools
            logger.exception("skill instance %s could not describe its tools", instance.pk)
            continue
        several = len(described) > 1
        own = _slug(instance.name) or f"{skill.name}_{instance.pk}"
        for entry in described:
            tool_name = str(entry.get("name") or "")
            base = f"{own}__{_slug(tool_name) or 'tool'}" if several or tool_name else own
            parameters = entry.get("parameters")
            tools.append(
                Tool(
                    name=_unique(base, taken),
                    description=str(entry.get("description") or instance.name),
                    parameters=parameters if isinstance(parameters, dict) else EMPTY_PARAMETERS,
                    skill=skill,
                    config=config,
                    instance_id=instance.pk,
                    instance_name=instance.name,
                    tool_name=tool_name,
                )
            )
    return Toolbox(tools)


def tools_for_bot(bot) -> Toolbox:
    """The tools a bot's enabled skills offer models."""
    return toolbox_build(bot_skills_enabled(bot_id=bot.pk))


class TurnTools:
    """The tools of one turn (apps.providers.tool_loop.ToolRunner): the bot's skill
    instances, described when the model call starts, run on the engine's I/O threads."""

    def __init__(
        self, instances: list[SkillInstance], context: SkillContext, *, mask: bool = False
    ) -> None:
        self.instances = instances
        self.context = context  # who asks, where; each call adds its tool's settings
        self.mask = mask  # the bot masks personal data in what the model reads
        self.toolbox = Toolbox([])

    async def prepare(self) -> None:
        self.toolbox = await process_loop.blocking(toolbox_build, self.instances)

    @property
    def specs(self) -> list[dict[str, Any]]:
        return self.toolbox.specs

    async def run(self, name: str, arguments: str, *, time_limit: float) -> ToolOutcome:
        outcome = await process_loop.blocking(
            self.toolbox.call, name, arguments, self.context, time_limit=time_limit
        )
        if self.mask:
            outcome = replace(outcome, text=mask_personal_data(outcome.text))
        return outcome
