"""mcp: an MCP server's tools, offered to models (and, with a default tool, to routing rules).

The server is reached over streamable HTTP (`url`, `headers`) or started as a local command
speaking MCP over stdio (`command`, `args`, `env`), with the official `mcp` SDK.

How a run works: skills run in worker threads and block (apps/skills/services.py), while
the SDK is async and built on anyio's structured concurrency: a session's task groups and
cancel scopes must be opened and closed by one task. So every run is one short session in
a fresh event loop in the calling thread (`asyncio.run`): connect, list or call, close.
When `asyncio.run` returns, everything the run started has ended: HTTP connections, the
SDK's background tasks, and a stdio server's child process, which the SDK stops (stdin
closed, then SIGTERM, then SIGKILL, each wait bounded) even when our deadline cancelled the
run. A long-lived loop thread holding sessions open would save the handshake per call but
needs reconnection, idle closing and child supervision across turns; listing is cached
instead (`TOOLS_CACHE_SECONDS`), so a turn does not reconnect just to offer the tools.

A tool's result is its text parts joined by newlines; other parts are shown as
`[image: image/png]`, `[audio: audio/wav]`, `[resource: <uri>]` (an embedded text resource
gives its text); a result with no content but structured content gives that as JSON.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext_lazy

from apps.skills.base import Skill, SkillContext, SkillError, SkillResult
from apps.skills.templates import MissingValue, fill_json, template_problem

if TYPE_CHECKING:
    from mcp import Client

logger = logging.getLogger(__name__)

T = TypeVar("T")

TOOLS_CACHE_SECONDS = 60.0  # a reachable server's tool list is reused this long
FAILURE_CACHE_SECONDS = 10.0  # an unreachable one is not asked again for this long
STDIO_SHUTDOWN_SECONDS = 6.0  # the SDK's bounded stop of a child: stdin, SIGTERM, SIGKILL
MAX_RESULT_CHARS = 16_000
MAX_LIST_PAGES = 20
FAILURE_REPLY = gettext_lazy("Sorry, I could not do that just now. Please try again later.")
RETRYABLE_STATUSES = {408, 425, 429, 500, 502, 503, 504}


class McpSkill(Skill):
    """The tools of one MCP server, offered to models; a routing rule may run one of them."""

    name = "mcp"
    label = gettext_lazy("MCP server")
    description = gettext_lazy(
        "Connects to an MCP server (streamable HTTP, or a local command over stdio) and "
        "offers its tools to the model."
    )
    secret_fields = ("headers", "env")
    config_schema = {
        "type": "object",
        "required": ["transport"],
        "additionalProperties": False,
        "properties": {
            "transport": {"enum": ["streamable_http", "stdio"]},
            "url": {"type": "string", "minLength": 8},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "command": {"type": "string", "minLength": 1},
            "args": {"type": "array", "items": {"type": "string"}},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
            "allowed_tools": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "uniqueItems": True,
            },
            "connect_timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 60,
                "default": 10,
            },
            "call_timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 300,
                "default": 30,
            },
            "tool": {"type": "string", "minLength": 1},
            "arguments": {"type": "object"},
            "failure_reply": {"type": "string"},
        },
        "allOf": [
            {
                "if": {"properties": {"transport": {"const": "stdio"}}},
                "then": {"required": ["command"]},
                "else": {"required": ["url"]},
            }
        ],
    }

    def config_errors(self, config: Any) -> list[str]:
        errors = super().config_errors(config)
        if errors:
            return errors
        if config["transport"] == "stdio":
            misplaced = [key for key in ("url", "headers") if key in config]
            errors += [f"{key}: only for streamable_http" for key in misplaced]
            problem = stdio_command_problem(config["command"])
            if problem:
                errors.append(f"command: {problem}")
        else:
            misplaced = [key for key in ("command", "args", "env") if key in config]
            errors += [f"{key}: only for stdio" for key in misplaced]
            parts = urlsplit(config["url"])
            if parts.scheme not in ("http", "https") or not parts.hostname:
                errors.append("url: must be an http:// or https:// address with a host")
            for key, value in (config.get("headers") or {}).items():
                if any(c in key + value for c in "\r\n"):
                    errors.append(f"headers: {key!r} has a line break")
        if "arguments" in config and "tool" not in config:
            errors.append("arguments: only with tool (the tool a routing rule runs)")
        allowed = config.get("allowed_tools")
        if "tool" in config and allowed is not None and config["tool"] not in allowed:
            errors.append("tool: not in allowed_tools")
        errors += [f"arguments: {p}" for p in _template_problems(config.get("arguments", {}))]
        return errors

    def run_time_limit(self, config: dict[str, Any]) -> float:
        # The run bounds itself (connect, then call); the child's stop comes after that.
        grace = STDIO_SHUTDOWN_SECONDS if config.get("transport") == "stdio" else 1.0
        return _connect_timeout(config) + _call_timeout(config) + grace + 1.0

    # Tools offered to models ------------------------------------------------------------

    def tools(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """The server's tools allowed by `allowed_tools`, listed at most once a minute per
        configuration and process. A server that cannot be reached offers none (logged):
        the turn answers without them."""
        key = _config_key(config)
        with _cache_lock:
            cached = _tools_cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return _allowed(cached[1] or [], config)
        try:
            listed = self.server_tools(config)
        except SkillError as error:
            logger.warning("MCP server %s offers no tools: %s", _server_label(config), error)
            with _cache_lock:
                _tools_cache[key] = (time.monotonic() + FAILURE_CACHE_SECONDS, None)
            return []
        return _allowed(listed, config)

    def server_tools(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """Every tool the server lists now, unfiltered (the admin shows them); what models
        are offered is refreshed with it. Raises SkillError when the server cannot be
        reached or answers an error."""

        async def listing(client: Client) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            cursor: str | None = None
            for _page in range(MAX_LIST_PAGES):
                page = await client.list_tools(cursor=cursor)
                found += [
                    {
                        "name": tool.name,
                        "description": tool.description or tool.title or "",
                        "parameters": tool.input_schema,
                    }
                    for tool in page.tools
                ]
                cursor = page.next_cursor
                if not cursor:
                    break
            return found

        listed = _session_run(config, listing, action="list tools")
        with _cache_lock:
            _tools_cache[_config_key(config)] = (time.monotonic() + TOOLS_CACHE_SECONDS, listed)
        return copy.deepcopy(listed)

    def call_tool(self, context: SkillContext) -> SkillResult:
        """Call `context.tool_name` with `context.arguments`; its text is the result."""
        return self._call(context.config, context.tool_name, context.arguments)

    def handle(self, context: SkillContext) -> SkillResult:
        """A routing rule runs the configured `tool` with `arguments` filled from the
        message ({text}, {user_id}, …). Without `tool` the server is for models only."""
        config = context.config
        if not config.get("tool"):
            raise SkillError(
                "this MCP server's tools are offered to models; set tool (and arguments) "
                "for a routing rule to run one",
                user_message=config.get("failure_reply") or FAILURE_REPLY,
            )
        values = {
            "text": context.text,
            "user_id": context.user_id,
            "user_name": context.user_name,
            "chat_id": context.chat_id,
            "platform": context.platform,
            "bot_name": getattr(context.bot, "name", ""),
        }
        try:
            arguments = fill_json(config.get("arguments", {}), values)
        except MissingValue as error:
            raise SkillError(
                f"the arguments name {error.args[0]!r}, which this message does not have",
                user_message=config.get("failure_reply") or FAILURE_REPLY,
            ) from error
        result = self._call(config, config["tool"], arguments)
        if not result.text.strip():
            raise SkillError(
                f"MCP tool {config['tool']} answered no text",
                user_message=config.get("failure_reply") or FAILURE_REPLY,
                details=result.details,
            )
        return result

    def _call(self, config: dict[str, Any], tool: str, arguments: dict[str, Any]) -> SkillResult:
        failure_reply = config.get("failure_reply") or FAILURE_REPLY
        details: dict[str, Any] = {"server": _server_label(config), "tool": tool}
        allowed = config.get("allowed_tools")
        if not tool or (allowed is not None and tool not in allowed):
            raise SkillError(
                f"MCP tool {tool!r} is not offered by this skill",
                user_message=failure_reply,
                details=details,
            )

        async def calling(client: Client) -> Any:
            return await client.call_tool(tool, arguments or {})

        try:
            result = _session_run(config, calling, action=f"call {tool}")
        except SkillError as error:
            error.user_message = failure_reply
            error.details = {**details, **error.details}
            raise
        text, kinds = result_text(result)
        details["content"] = kinds
        if len(text) > MAX_RESULT_CHARS:
            text, details["truncated"] = text[:MAX_RESULT_CHARS] + "\n[…]", True
        if result.is_error:
            raise SkillError(
                f"MCP tool {tool} answered an error: {_scrub(text[:500], config)}",
                user_message=failure_reply,
                details={**details, "is_error": True},
            )
        return SkillResult(text=text, details=details)


def stdio_command_problem(command: str) -> str | None:
    """Why this installation will not start `command` as an MCP server, or None.

    A stdio server is a program the worker runs: only those listed in MCP_STDIO_COMMANDS
    ("*" allows any), so editing a skill is not a way to run any command on the workers.
    """
    if not command.strip():
        return "must name a program"
    allowed = list(settings.MCP_STDIO_COMMANDS)
    if "*" in allowed or command in allowed:
        return None
    listed = ", ".join(allowed) or "none"
    return f"not in MCP_STDIO_COMMANDS, the programs this installation runs (allowed: {listed})"


def result_text(result: Any) -> tuple[str, list[str]]:
    """A tool result as text (see the module's docstring), and the kinds of its parts."""
    from mcp.types import (
        AudioContent,
        EmbeddedResource,
        ImageContent,
        ResourceLink,
        TextContent,
        TextResourceContents,
    )

    parts: list[str] = []
    kinds: list[str] = []
    for block in result.content:
        kinds.append(block.type)
        if isinstance(block, TextContent):
            parts.append(block.text)
        elif isinstance(block, ImageContent | AudioContent):
            parts.append(f"[{block.type}: {block.mime_type}]")
        elif isinstance(block, ResourceLink):
            parts.append(f"[resource: {block.uri}]")
        elif isinstance(block, EmbeddedResource):
            resource = block.resource
            if isinstance(resource, TextResourceContents):
                parts.append(resource.text)
            else:
                parts.append(f"[resource: {resource.uri} ({resource.mime_type or 'binary'})]")
    if not parts and result.structured_content is not None:
        kinds.append("structured")
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts), kinds


# The session ------------------------------------------------------------------------------


def _session_run(
    config: dict[str, Any], work: Callable[[Client], Awaitable[T]], *, action: str
) -> T:
    """Connect, run `work(client)`, close: one bounded session in a fresh event loop.

    Raises SkillError naming the server (never its headers, environment, path or query).
    """
    if config.get("transport") == "stdio":
        problem = stdio_command_problem(config.get("command", ""))
        if problem:
            raise SkillError(f"MCP server {_server_label(config)}: {problem}")
    statuses: list[int] = []
    try:
        return _blocking(lambda: _bounded(config, work, statuses))
    except BaseException as error:  # noqa: BLE001 - anyio wraps failures in exception groups
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise
        raise _failure(error, config, action, statuses) from error


async def _bounded(
    config: dict[str, Any], work: Callable[[Client], Awaitable[T]], statuses: list[int]
) -> T:
    import anyio

    done: list[T] = []
    phase = "connect"
    # One scope for the whole session (anyio's scopes must nest with the SDK's task
    # groups): first the connect deadline, then, connected, the call's.
    with anyio.CancelScope(deadline=anyio.current_time() + _connect_timeout(config)) as scope:
        async with _client(config, statuses) as client:
            phase = "call"
            scope.deadline = anyio.current_time() + _call_timeout(config)
            done.append(await work(client))
    if done:  # the work finished; only closing the session ran out of time
        return done[0]
    limit = _connect_timeout(config) if phase == "connect" else _call_timeout(config)
    raise _Timeout(phase, limit)


def _client(config: dict[str, Any], statuses: list[int]) -> Any:
    import httpx2
    from mcp import Client, StdioServerParameters
    from mcp.client.streamable_http import streamable_http_client
    from mcp.types import Implementation

    info = Implementation(name="assistant", version="1")
    if config["transport"] == "stdio":
        server = StdioServerParameters(
            command=config["command"], args=config.get("args", []), env=config.get("env") or None
        )
        return Client(server, read_timeout_seconds=_call_timeout(config), client_info=info)

    async def record(response: httpx2.Response) -> None:
        if response.status_code >= 400:
            statuses.append(response.status_code)

    http = httpx2.AsyncClient(
        headers=config.get("headers") or {},
        timeout=httpx2.Timeout(_connect_timeout(config), read=_call_timeout(config)),
        event_hooks={"response": [record]},
    )
    transport = streamable_http_client(config["url"], http_client=http)
    return _ClosingClient(
        Client(transport, read_timeout_seconds=_call_timeout(config), client_info=info), http
    )


class _ClosingClient:
    """A Client whose own httpx2 client is closed with it (the SDK leaves a given one open)."""

    def __init__(self, client: Client, http: Any):
        self.client, self.http = client, http

    async def __aenter__(self) -> Client:
        try:
            return await self.client.__aenter__()
        except BaseException:
            await self.http.aclose()
            raise

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self.client.__aexit__(*exc_info)
        finally:
            await self.http.aclose()


def _blocking(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to its end in a fresh event loop, in this thread (a skill's worker
    thread), or in a helper thread when this thread already runs a loop."""

    async def main() -> T:
        return await make()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcp") as helper:
        return helper.submit(asyncio.run, main()).result()


# Failures ---------------------------------------------------------------------------------


class _Timeout(Exception):
    def __init__(self, phase: str, limit: float):
        super().__init__(phase)
        self.phase, self.limit = phase, limit


def _leaf(error: BaseException) -> BaseException:
    """The first real failure inside anyio's exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _failure(
    error: BaseException, config: dict[str, Any], action: str, statuses: list[int]
) -> SkillError:
    import httpx2
    from mcp import MCPError

    cause = _leaf(error)
    server = _server_label(config)
    details: dict[str, Any] = {"server": server}
    retryable = False
    if isinstance(cause, _Timeout):
        what = "connect" if cause.phase == "connect" else action
        reason, retryable = f"could not {what} within {cause.limit:g}s", True
    elif statuses:
        status = statuses[-1]
        details["http_status"] = status
        reason, retryable = f"answered HTTP {status}", status in RETRYABLE_STATUSES
    elif isinstance(cause, httpx2.TransportError):
        reason, retryable = f"unreachable ({type(cause).__name__}: {cause})", True
    elif isinstance(cause, MCPError):
        reason = f"MCP error {cause.error.code}: {cause.error.message}"
        retryable = cause.error.message == "Connection closed"
    elif isinstance(cause, OSError) and config.get("transport") == "stdio":
        reason = f"could not start: {cause.strerror or cause}"
    else:
        reason = f"{type(cause).__name__}: {cause}"
    details["reason"] = reason = _scrub(reason, config)
    return SkillError(
        f"MCP server {server}: {action} failed: {reason}", retryable=retryable, details=details
    )


def _scrub(text: str, config: dict[str, Any]) -> str:
    """`text` without the configuration's secrets or its URL's path and query."""
    secrets = [*(config.get("headers") or {}).values(), *(config.get("env") or {}).values()]
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "<secret>")
    if config.get("url"):
        text = text.replace(config["url"], _server_label(config))
    return text


def _server_label(config: dict[str, Any]) -> str:
    """How errors and logs name the server: scheme, host and port, or the command's name."""
    if config.get("transport") == "stdio":
        return f"stdio:{str(config.get('command', '')).rsplit('/', 1)[-1]}"
    parts = urlsplit(config.get("url", ""))
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


# Helpers ----------------------------------------------------------------------------------

_tools_cache: dict[str, tuple[float, list[dict[str, Any]] | None]] = {}
_cache_lock = threading.Lock()


def tools_cache_clear() -> None:
    """Forget every listed server's tools (tests; a changed configuration has a new key)."""
    with _cache_lock:
        _tools_cache.clear()


def _config_key(config: dict[str, Any]) -> str:
    # A digest: the cache never holds the configuration's secrets.
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def _allowed(listed: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
    allowed = config.get("allowed_tools")
    # Copies: a caller may change what it is given, never the cache.
    return [copy.deepcopy(tool) for tool in listed if allowed is None or tool["name"] in allowed]


def _connect_timeout(config: dict[str, Any]) -> float:
    return float(config.get("connect_timeout", 10))


def _call_timeout(config: dict[str, Any]) -> float:
    return float(config.get("call_timeout", 30))


def _template_problems(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [p for item in value.values() for p in _template_problems(item)]
    if isinstance(value, list):
        return [p for item in value for p in _template_problems(item)]
    if isinstance(value, str):
        problem = template_problem(value)
        return [problem] if problem else []
    return []
