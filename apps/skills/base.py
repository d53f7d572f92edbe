"""The skill interface: what a skill is, what it is given and what it answers.

A skill is a class with a `name`, a `label`, the JSON Schema of its configuration and
`handle(context) -> SkillResult`. Built-ins live in apps/skills/builtins/; packages add
more through the `assistant.skills` entry-point group (apps/skills/registry.py). A
`SkillInstance` row is one bot's configured use of a skill.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import jsonschema
from django.utils.functional import Promise


@dataclass(frozen=True)
class SkillContext:
    """What a skill run sees: the bot, its configuration, who wrote what, and where.

    `arguments` are a model's tool-call arguments (empty when a routing rule runs it);
    `tool_name` names which of the skill's tools the model called ("" for its only one).
    """

    bot: Any
    config: dict[str, Any]
    text: str
    user_id: str = ""
    user_name: str = ""
    chat_id: str = ""
    platform: str = ""
    language: str = ""  # the language the bot answers this user in (gettext runs in it)
    arguments: dict[str, Any] = field(default_factory=dict)
    tool_name: str = ""


@dataclass(frozen=True)
class SkillResult:
    """A skill's answer: the text sent to the user, and what to record about the run."""

    text: str
    details: dict[str, Any] = field(default_factory=dict)


class SkillError(Exception):
    """A skill could not answer. `user_message` (if any) is what the user is told;
    `retryable` says whether trying again later could help; `details` are recorded."""

    def __init__(
        self,
        message: str,
        *,
        user_message: str | Promise = "",
        retryable: bool = False,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.user_message = user_message
        self.retryable = retryable
        self.details = details or {}


class Skill:
    """Base class of every skill. Subclasses set the class attributes and `handle()`.

    `secret_fields` are top-level keys of the configuration that hold secrets: masked in
    the admin, the API and the audit log (the whole configuration is encrypted at rest).
    `time_limit` bounds one run in seconds.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str | Promise] = ""
    description: ClassVar[str | Promise] = ""
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    secret_fields: ClassVar[tuple[str, ...]] = ()
    time_limit: ClassVar[float] = 20.0

    def config_errors(self, config: Any) -> list[str]:
        """What is wrong with `config` by this skill's schema (empty when it is valid)."""
        validator = jsonschema.Draft202012Validator(self.config_schema)
        errors = sorted(validator.iter_errors(config), key=lambda error: list(error.path))
        return [_error_text(error) for error in errors]

    def run_time_limit(self, config: dict[str, Any]) -> float:
        """How long one run with `config` may take, in seconds."""
        return self.time_limit

    def handle(self, context: SkillContext) -> SkillResult:
        """Answer the message in `context` (a routing rule ran this skill)."""
        raise NotImplementedError

    def tool(self, config: dict[str, Any]) -> dict[str, Any] | None:
        """The one tool this skill offers models: {"description", "parameters" (JSON
        Schema)}, or None. A skill with several tools overrides `tools()` instead."""
        return None

    def tools(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """Every tool the configured skill offers models: {"name", "description",
        "parameters"}; "name" is "" for a skill's only tool (the instance names it).
        An MCP server's skill lists the server's tools here."""
        described = self.tool(config)
        return [{"name": "", **described}] if described else []

    def call_tool(self, context: SkillContext) -> SkillResult:
        """Run the tool `context.tool_name` with `context.arguments` (a model called it);
        the result's text goes back to the model. By default the skill's `handle()`."""
        return self.handle(context)


def _error_text(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(part) for part in error.path)
    return f"{where}: {error.message}" if where else error.message
