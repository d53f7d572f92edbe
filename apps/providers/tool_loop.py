"""One answer's model → tools → model loop: the tools offered, the calls made, their results.

The model client (`client.astream_reply`) streams each step; when the model answers with
tool calls instead of (or besides) text, it hands them to `ToolLoop.run_calls`, which runs
them through a `ToolRunner` (the bot's skills: apps/skills/tools.py) and keeps the
exchange (the assistant's calls, then one `role: tool` result each) for the next request.

The loop is bounded: at most `max_steps` rounds of calls (settings.TOOL_MAX_STEPS), and at
most `time_limit` seconds from the first call on (settings.TOOL_TIME_LIMIT_SECONDS); past
either, the next request offers the tools with `tool_choice: "none"`, so the model answers
with what it has. The loop outlives a failed profile: the fallback continues from the
results so far (see `messages_for`), so an action already taken (a ticket opened) is never
taken again because the first model broke off.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings

from apps.providers.client import ChatMessage

if TYPE_CHECKING:
    from apps.providers.models import ModelProfile

# What the model reads of one result (a tool may answer with a whole document) ...
RESULT_CHARS_FOR_MODEL = 8000
# ... and what is recorded on the answer of its arguments and result.
RECORDED_CHARS = 2000
SHORTENED = " …[shortened]"


@dataclass(frozen=True)
class ToolOutcome:
    """What one tool call gave: the text the model reads, an error (empty when it worked)
    and details recorded with the call (which skill ran it, its HTTP attempts)."""

    text: str
    error: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class ToolRunner(Protocol):
    """The tools of one turn: their OpenAI descriptions, and running one of them."""

    async def prepare(self) -> None:
        """Describe the tools (may ask an outside server); `specs` is read after it."""
        ...

    @property
    def specs(self) -> list[dict[str, Any]]: ...

    async def run(self, name: str, arguments: str, *, time_limit: float) -> ToolOutcome:
        """Run the tool `name` with `arguments` (the model's JSON text) within `time_limit`
        seconds. Never raises for the tool's own failures: they are outcomes."""
        ...


@dataclass(frozen=True)
class ToolCall:
    """One call as the model asked for it, assembled from the streamed deltas."""

    id: str
    name: str
    arguments: str

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


class ToolCallAssembler:
    """Joins streamed `tool_calls` deltas into whole calls.

    A streamed call arrives in pieces keyed by `index`: the first piece carries its `id`,
    `type` and `function.name`, later pieces carry more of `function.arguments` (a JSON
    text split anywhere). See the OpenAI API reference, "The chat completion chunk object"
    (choices[].delta.tool_calls[]: index, id, type, function.name, function.arguments).
    """

    def __init__(self) -> None:
        self.parts: dict[int, dict[str, Any]] = {}

    def feed(self, deltas: Any) -> None:
        """`deltas`: a chunk's `choices[].delta.tool_calls`, as parsed JSON."""
        if not isinstance(deltas, list):
            return
        for delta in deltas:
            index = delta.get("index", 0) if isinstance(delta, dict) else None
            if not isinstance(index, int):
                continue
            part = self.parts.setdefault(index, {"id": "", "name": "", "arguments": ""})
            if isinstance(delta.get("id"), str) and delta["id"]:
                part["id"] = delta["id"]
            function = delta.get("function")
            if isinstance(function, dict):
                if isinstance(function.get("name"), str):
                    part["name"] += function["name"]
                if isinstance(function.get("arguments"), str):
                    part["arguments"] += function["arguments"]

    def calls(self) -> list[ToolCall]:
        return [
            ToolCall(
                id=part["id"] or f"call_{index}", name=part["name"], arguments=part["arguments"]
            )
            for index, part in sorted(self.parts.items())
        ]


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(SHORTENED)] + SHORTENED


STOP_NOTE = (
    "You may not call more tools for this answer. Answer the user now with the results "
    "you have; if something could not be done, say so."
)


class ToolLoop:
    """The state of one answer's tool calls, kept across steps and fallback profiles.

    `records` are what the answer records (Message.tool_calls): per call its step, the
    profile that asked, the function name, arguments, result or error, and milliseconds.
    """

    def __init__(
        self,
        runner: ToolRunner,
        *,
        max_steps: int | None = None,
        time_limit: float | None = None,
    ) -> None:
        self.runner = runner
        self.max_steps = settings.TOOL_MAX_STEPS if max_steps is None else max_steps
        self.time_limit = settings.TOOL_TIME_LIMIT_SECONDS if time_limit is None else time_limit
        self.steps = 0
        self.started: float | None = None  # time.monotonic() of the first call
        self.exchange: list[ChatMessage] = []  # the assistant's calls and the results
        self.records: list[dict[str, Any]] = []
        self.prepared = False
        self.shown = ""  # the text steps that called tools showed (it stays in the answer)

    async def prepare(self) -> None:
        """Get the tools described, once, before the first request."""
        if not self.prepared:
            await self.runner.prepare()
            self.prepared = True

    def time_left(self) -> float:
        if self.started is None:
            return self.time_limit
        return self.time_limit - (time.monotonic() - self.started)

    def may_call(self, candidate: ModelProfile) -> bool:
        """Whether `candidate` is offered tools it may still call in this answer."""
        return self.offered(candidate) and self.steps < self.max_steps and self.time_left() > 0

    def offered(self, candidate: ModelProfile) -> bool:
        """Whether `candidate` is sent the tools at all: it supports them and there are some."""
        return candidate.supports_tools and bool(self.runner.specs)

    def request_options(self, candidate: ModelProfile) -> dict[str, Any]:
        """The request's `tools` (and `tool_choice: "none"` once the bounds are reached).

        A profile without tool support is sent none: many servers refuse the field."""
        if not self.offered(candidate):
            return {}
        options: dict[str, Any] = {"tools": self.runner.specs}
        if not self.may_call(candidate):
            options["tool_choice"] = "none"
        return options

    def messages_for(self, candidate: ModelProfile) -> list[ChatMessage]:
        """What follows the prompt: the calls and results so far.

        A profile that supports tools reads them as they were (assistant `tool_calls`,
        then `role: tool` results); one that does not (a fallback) reads them as a system
        note, so it can still answer from them without knowing the tool protocol.
        """
        if not self.records:
            return []
        if self.offered(candidate):
            messages = list(self.exchange)
            if not self.may_call(candidate):
                messages.append(ChatMessage("system", STOP_NOTE))
            return messages
        done = "\n".join(
            f"- {record['name']}({record['arguments']}): "
            + (f"failed: {record['error']}" if record["error"] else record["result"])
            for record in self.records
        )
        return [
            ChatMessage(
                "system",
                "While answering this message you already called these tools; do not ask "
                f"for them again, answer from their results:\n{done}",
            )
        ]

    async def run_calls(self, candidate: ModelProfile, content: str, calls: list[ToolCall]) -> None:
        """Run one step's calls, in order, and keep the exchange for the next request."""
        self.steps += 1
        if self.started is None:
            self.started = time.monotonic()
        self.exchange.append(
            ChatMessage(
                "assistant", content or None, tool_calls=tuple(call.payload() for call in calls)
            )
        )
        for call in calls:
            started = time.monotonic()
            left = self.time_left()
            if left <= 0:
                outcome = ToolOutcome(
                    text="error: not run, the time for tools in this answer is used up",
                    error=f"not run: the {self.time_limit:g}s for tools in this answer are used up",
                )
            else:
                try:
                    outcome = await self.runner.run(call.name, call.arguments, time_limit=left)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - a runner's bug must not end the answer
                    outcome = ToolOutcome(text=f"error: {error}", error=f"{error!r}")
            text = shorten(outcome.text, RESULT_CHARS_FOR_MODEL)
            self.exchange.append(ChatMessage("tool", text, tool_call_id=call.id))
            self._record(candidate, call, outcome, started=started)

    def ignored(self, candidate: ModelProfile, calls: list[ToolCall]) -> None:
        """Record calls the model asked for when it could call no more (they are not run)."""
        for call in calls:
            outcome = ToolOutcome(
                text="", error="not run: no more tool calls in this answer (step or time bound)"
            )
            self._record(candidate, call, outcome, started=time.monotonic())

    def _record(
        self, candidate: ModelProfile, call: ToolCall, outcome: ToolOutcome, *, started: float
    ) -> None:
        self.records.append(
            {
                "step": self.steps,
                "profile": candidate.name,
                "id": call.id,
                "name": call.name,
                "arguments": shorten(call.arguments, RECORDED_CHARS),
                "result": shorten(outcome.text, RECORDED_CHARS) if not outcome.error else "",
                "error": outcome.error,
                "ms": round((time.monotonic() - started) * 1000),
                **outcome.details,
            }
        )
