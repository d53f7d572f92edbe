"""The model client: the only module that imports openai.

`stream_reply()` streams one answer from a profile and keeps the user from
hanging: it retries retryable failures with exponential backoff and jitter
(honouring Retry-After), skips providers that are cooling down after repeated
failures, and walks the profile's fallback chain on connection errors, 5xx,
429, auth errors, a first token that does not come within the profile's
first-token timeout, or a stream that stalls before any text was produced.
Once text was produced, a stall or a broken stream ends the answer with a
short "answer interrupted" note instead.

Token counts are estimated (about four characters a token, one a token for CJK
and other wide scripts): tiktoken would download its BPE files at run time,
which this deployment does not allow.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings

from apps.core import metrics
from apps.core.aio import LoopClock, process_loop
from apps.core.retry import backoff_delay
from apps.providers import services
from apps.providers.models import ModelProfile, Provider

if TYPE_CHECKING:
    import aiohttp
    import openai

    from apps.providers.tool_loop import ToolCall, ToolLoop

# `openai` is imported where a model is called, not here: the SDK takes about a second
# to import, and every web process and `manage.py` command imports this module.

logger = logging.getLogger(__name__)

INTERRUPTED_NOTE = "[answer interrupted]"

# Error kinds (ModelError.kind). The turn and the admin read them; users never see them.
CONNECTION = "connection"
TIMEOUT = "timeout"
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
AUTH = "auth"
BAD_REQUEST = "bad_request"
CONTEXT_LENGTH = "context_length"
FIRST_TOKEN_TIMEOUT = "first_token_timeout"  # noqa: S105 - an error kind
STALL = "stall"
COOLING_DOWN = "cooling_down"
DISABLED = "disabled"

# Retried on the same provider (with backoff) before falling back.
_RETRY_SAME_PROVIDER = {CONNECTION, TIMEOUT, RATE_LIMITED, SERVER_ERROR}
# Provider faults: they count towards the provider's cooldown.
_PROVIDER_FAULTS = {
    CONNECTION,
    TIMEOUT,
    RATE_LIMITED,
    SERVER_ERROR,
    AUTH,
    FIRST_TOKEN_TIMEOUT,
    STALL,
}


@dataclass(frozen=True)
class ChatMessage:
    """One chat message; `content` is text or a list of OpenAI content parts (text, image_url).

    An assistant's tool calls carry `tool_calls` (OpenAI's shape; `content` may be None),
    a tool's result names the call it answers with `tool_call_id` (apps/providers/tool_loop.py).
    """

    role: str  # "system" | "user" | "assistant" | "tool"
    content: str | list[dict[str, Any]] | None
    tool_calls: tuple[dict[str, Any], ...] = ()
    tool_call_id: str = ""

    def payload(self) -> dict[str, Any]:
        """The message as the chat completions API takes it."""
        message: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = list(self.tool_calls)
        if self.tool_call_id:
            message["tool_call_id"] = self.tool_call_id
        return message


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def image_part(data: bytes, mime_type: str) -> dict[str, Any]:
    """An image as an image_url part holding a data URL."""
    encoded = base64.b64encode(data).decode()
    return {
        "type": "image_url",
        "image_url": {"url": f"data:{mime_type or 'image/jpeg'};base64,{encoded}"},
    }


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False


@dataclass
class Reply:
    """What a finished stream produced, which profile produced it, and what was tried."""

    text: str
    profile: ModelProfile
    usage: Usage
    attempts: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    first_token_seconds: float | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # ToolLoop.records


class ModelError(Exception):
    """A model call failed. `retryable` says whether trying again (or elsewhere) can help."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        kind: str = "",
        retry_after: float | None = None,
        attempts: list[dict[str, Any]] | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.kind = kind
        self.retry_after = retry_after
        self.attempts = attempts or []
        # Tools already called for this answer (their actions happened): see turn_model_wait.
        self.tool_calls = tool_calls or []


# Calls through the SDK (transcriptions) one client (and so one connection pool) carries
# at once; more calls get more clients. The clients send over aiohttp (openai's
# `DefaultAioHttpClient`), cheaper than the SDK's default httpx transport. Model streams
# go over apps.providers.sse, cheaper still (its docstring has the figures).
STREAMS_PER_CLIENT = 32


class _ProviderClients:
    """A provider's long-lived clients; a call leases the least busy one."""

    def __init__(self, provider: Provider, version: str):
        self.provider = provider
        self.version = version
        self.clients: list[openai.AsyncOpenAI] = []
        self.busy: list[int] = []
        self.streaming = 0  # streams open on `session`
        self._session: aiohttp.ClientSession | None = None
        self.chat_url = f"{provider.base_url.rstrip('/')}/chat/completions"
        self.headers = _sse().request_headers(provider.api_key, provider.extra_headers)

    @contextmanager
    def stream_session(self) -> Iterator[aiohttp.ClientSession]:
        """The session (connection pool) model streams go over, made on first use."""
        if self._session is None or self._session.closed:
            self._session = _sse().new_session(connect_timeout=self.provider.request_timeout)
        self.streaming += 1
        try:
            yield self._session
        finally:
            self.streaming -= 1

    def _new(self) -> int:
        import openai

        provider = self.provider
        self.clients.append(
            openai.AsyncOpenAI(
                base_url=provider.base_url,
                api_key=provider.api_key or "not-needed",
                timeout=provider.request_timeout,
                default_headers=provider.extra_headers or None,
                max_retries=0,  # retries are ours: backoff, Retry-After, cooldown, fallback
                http_client=openai.DefaultAioHttpClient(),
            )
        )
        self.busy.append(0)
        return len(self.clients) - 1

    async def close_when_idle(self) -> None:
        """Close the clients (their connections) once no call uses them any more."""
        while any(self.busy) or self.streaming:
            await asyncio.sleep(1.0)
        await self.close()

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        if self._session is not None:
            await self._session.close()

    @contextmanager
    def lease(self) -> Iterator[openai.AsyncOpenAI]:
        index = min(range(len(self.busy)), key=self.busy.__getitem__, default=None)
        if index is None or self.busy[index] >= STREAMS_PER_CLIENT:
            index = self._new()
        self.busy[index] += 1
        try:
            yield self.clients[index]
        finally:
            self.busy[index] -= 1


def _sse():
    from apps.providers import sse  # with aiohttp, only where a model is called

    return sse


_clients: dict[int, _ProviderClients] = {}
_retiring: set[asyncio.Task] = set()  # a changed provider's old clients, closing


async def _close_clients() -> None:
    clients = list(_clients.values())
    _clients.clear()
    for provider_clients in clients:
        await provider_clients.close()


process_loop.at_exit(_close_clients)


def _clients_for(provider: Provider) -> _ProviderClients:
    """The provider's clients (and HTTP connection pools), rebuilt when it changes.

    Only the process loop (apps.core.aio) uses these: their pools belong to it.
    """
    version = provider.updated_at.isoformat() if provider.updated_at else ""
    cached = _clients.get(provider.pk)
    if cached is None or cached.version != version:
        if cached is not None:
            closing = asyncio.get_running_loop().create_task(cached.close_when_idle())
            _retiring.add(closing)
            closing.add_done_callback(_retiring.discard)
        cached = _clients[provider.pk] = _ProviderClients(provider, version)
    return cached


def _retry_after(headers: Mapping[str, str]) -> float | None:
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return float(milliseconds) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _is_context_length(body: Any, message: str) -> bool:
    body = body if isinstance(body, dict) else {}
    error = body.get("error", body) if isinstance(body, dict) else {}
    code = str(error.get("code") or "") if isinstance(error, dict) else ""
    text = f"{code} {message}".lower()
    return "context_length" in text or "context length" in text or "maximum context" in text


def _status_error(status: int, message: str, headers: Mapping[str, str], body: Any) -> ModelError:
    if status == 429:
        kind = RATE_LIMITED
    elif status >= 500:
        kind = SERVER_ERROR
    elif status in (401, 403):
        kind = AUTH
    elif status in (400, 413) and _is_context_length(body, message):
        kind = CONTEXT_LENGTH
    else:
        kind = BAD_REQUEST
    return ModelError(
        f"HTTP {status}: {message}",
        retryable=kind in _RETRY_SAME_PROVIDER,
        status=status,
        kind=kind,
        retry_after=_retry_after(headers),
    )


def _error_from(exc: Exception) -> ModelError:
    """A failed call, from the SDK (transcription) or from a stream (apps.providers.sse)."""
    import aiohttp
    import openai

    from apps.providers import sse

    if isinstance(exc, sse.HTTPStatusError):
        return _status_error(exc.status, exc.message, exc.headers, exc.body)
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc.status_code, exc.message, exc.response.headers, exc.body)
    if isinstance(exc, sse.StreamError):
        return ModelError(f"APIError: {exc}", retryable=False, kind=BAD_REQUEST)
    if isinstance(exc, (openai.APITimeoutError, TimeoutError)) and not _refused(exc):
        return ModelError("timed out", retryable=True, kind=TIMEOUT)
    if isinstance(exc, (openai.APIConnectionError, aiohttp.ClientError, OSError)):
        return ModelError(f"connection failed: {exc}", retryable=True, kind=CONNECTION)
    if isinstance(exc, openai.OpenAIError):
        return ModelError(f"{exc.__class__.__name__}: {exc}", retryable=False, kind=BAD_REQUEST)
    return ModelError(f"{exc.__class__.__name__}: {exc}", retryable=True, kind=CONNECTION)


def _refused(exc: BaseException) -> bool:
    """Whether the connection failed outright (refused, unreachable), not by time.

    openai's aiohttp transport reports every aiohttp connection error as a connect
    time-out; the cause it chains says which it was.
    """
    import aiohttp

    while exc is not None:
        if isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(exc, TimeoutError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def estimate_tokens(text: str) -> int:
    """A token estimate: ~4 characters a token for ASCII, one a token for wider scripts."""
    if not text:
        return 0
    wide = sum(1 for character in text if ord(character) > 0x2FF)
    return max(1, (len(text) - wide + 3) // 4 + wide)


IMAGE_TOKENS = 800  # what one image part is counted as in the context budget


def estimate_message_tokens(message: ChatMessage) -> int:
    """Tokens one message takes in the prompt (content plus a few for the role framing)."""
    calls = sum(
        estimate_tokens(str(call.get("function", {}).get("arguments", ""))) + 8
        for call in message.tool_calls
    )
    if message.content is None:
        return 4 + calls
    if isinstance(message.content, str):
        return 4 + calls + estimate_tokens(message.content)
    total = 4
    for part in message.content:
        if part.get("type") == "text":
            total += estimate_tokens(part.get("text", ""))
        else:
            total += IMAGE_TOKENS
    return total


def _payload(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    return [m.payload() for m in messages]


_DONE = object()


class _Content(str):
    """A piece of answer text (as opposed to a liveness signal or usage)."""


class _ToolCalls(list):
    """The tool calls a finished stream asked for (after its text)."""


_ALIVE = object()  # a chunk that shows the model is working (e.g. reasoning) but has no text


async def _timed_stream(
    profile: ModelProfile, messages: list[ChatMessage], options: dict[str, Any] | None = None
) -> AsyncIterator[str | Usage | list[ToolCall]]:
    """Stream text pieces then usage, then the tool calls the model asked for (if any);
    raise ModelError on failure, first-token timeout or stall. `options` adds to the
    request (`tools`, `tool_choice`).

    A reader task consumes the provider's stream (apps.providers.sse), so the waits for
    the first token and between tokens are measured here, independently of socket
    timeouts, and in the model's time: the process loop's own lag does not count
    (apps.core.aio.LoopClock).
    """

    provider = profile.provider
    request: dict[str, Any] = dict(
        model=profile.model,
        messages=_payload(messages),
        temperature=profile.temperature,
        max_tokens=profile.max_tokens,
        stream=True,
        stream_options={"include_usage": True},
        **(options or {}),
    )
    items: asyncio.Queue = asyncio.Queue()

    async def produce() -> None:
        try:
            clients = _clients_for(provider)
            with clients.stream_session() as session:
                chunks = _sse().chat_chunks(session, clients.chat_url, clients.headers, request)
                await read_stream(chunks)
            items.put_nowait(_DONE)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the reader of the queue
            items.put_nowait(_error_from(exc))

    async def read_stream(chunks: AsyncIterator[Any]) -> None:
        """Chunks as the OpenAI API reference's "chat completion chunk object" gives them
        (`choices[].delta.content` / `.tool_calls`, `usage`); providers add fields such as
        DeepSeek's and Qwen's `reasoning_content`. A chunk of another shape is skipped."""
        from apps.providers.tool_loop import ToolCallAssembler

        calls = ToolCallAssembler()
        try:
            async for chunk in chunks:
                if not isinstance(chunk, dict):
                    continue
                usage = chunk.get("usage")
                if isinstance(usage, dict):
                    items.put_nowait(
                        Usage(
                            prompt_tokens=_count(usage.get("prompt_tokens")),
                            completion_tokens=_count(usage.get("completion_tokens")),
                        )
                    )
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") if isinstance(choice, dict) else None
                    if not isinstance(delta, dict):
                        continue
                    content = delta.get("content")
                    if content and isinstance(content, str):
                        items.put_nowait(_Content(content))
                    elif delta.get("tool_calls"):
                        calls.feed(delta["tool_calls"])
                        items.put_nowait(_ALIVE)  # a call's arguments stream like text
                    elif delta.get("reasoning_content"):
                        items.put_nowait(_ALIVE)
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        if calls.parts:
            items.put_nowait(_ToolCalls(calls.calls()))

    clock = LoopClock()
    alive = False

    async def watch() -> None:
        # One timer per wait, not one per token: the deadline moves on as tokens arrive
        # (clock.restart()), and the watchdog, waking at the old deadline, sleeps again.
        while True:
            wait = profile.stall_timeout if alive else profile.first_token_timeout
            remaining = wait - clock.elapsed()
            if remaining <= 0:
                items.put_nowait(_timed_out(profile, alive=alive))
                return
            await asyncio.sleep(remaining)

    producer = asyncio.create_task(produce())
    watchdog = asyncio.create_task(watch())
    try:
        while True:
            item = await items.get()
            if item is _DONE:
                return
            if isinstance(item, ModelError):
                raise item
            if item is _ALIVE or isinstance(item, _Content):
                alive = True
                clock.restart()  # from now on, the wait is between tokens
            if item is _ALIVE:
                continue
            if isinstance(item, _ToolCalls):
                yield list(item)
                continue
            yield str(item) if isinstance(item, _Content) else item
    finally:
        watchdog.cancel()
        if not producer.done():
            producer.cancel()


def _count(value: Any) -> int:
    """A token count from a chunk's `usage` (0 if absent or not a number)."""
    return value if isinstance(value, int) and value > 0 else 0


def _timed_out(profile: ModelProfile, *, alive: bool) -> ModelError:
    if alive:
        return ModelError(
            f"stream stalled: no token for {profile.stall_timeout:g}s", retryable=True, kind=STALL
        )
    return ModelError(
        f"no first token within {profile.first_token_timeout:g}s",
        retryable=True,
        kind=FIRST_TOKEN_TIMEOUT,
    )


def profile_chain(profile: ModelProfile) -> list[ModelProfile]:
    """The profile followed by its fallbacks, each once, with their providers loaded.

    Synchronous (it reads the database); `astream_reply` takes its result, so the
    streaming itself never touches the ORM.
    """
    chain: list[ModelProfile] = []
    seen: set[int] = set()
    current: ModelProfile | None = profile
    while current is not None and current.pk not in seen:
        seen.add(current.pk)
        current.provider  # noqa: B018 - loaded here, read on the process loop
        chain.append(current)
        current = current.fallback
    return chain


def retry_delay(*, attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter for retry `attempt` (0-based), at least Retry-After."""
    base = float(settings.MODEL_RETRY_BASE_SECONDS)
    cap = float(settings.MODEL_RETRY_MAX_SECONDS)
    return backoff_delay(attempt=attempt + 1, base=base, cap=cap, retry_after=retry_after)


def messages_with_system(profile: ModelProfile, messages: list[ChatMessage]) -> list[ChatMessage]:
    """The profile's system prompt (if any) followed by `messages`."""
    system = [ChatMessage("system", profile.system_prompt)] if profile.system_prompt else []
    return system + list(messages)


PromptBuilder = Callable[[ModelProfile, int], list[ChatMessage]]
MAX_SQUEEZE = 2  # prompt builders are asked for a smaller prompt this many times


def stream_reply(
    *,
    profile: ModelProfile,
    messages: list[ChatMessage] | None = None,
    build: PromptBuilder | None = None,
    on_delta: Callable[[str], None],
    use_fallbacks: bool = True,
    tools: ToolLoop | None = None,
) -> Reply:
    """Synchronous `astream_reply` for ordinary code (probes, housekeeping, tests).

    It runs on the process loop; `on_delta` is called from the loop's thread.
    """
    chain = profile_chain(profile) if use_fallbacks else profile_chain(profile)[:1]
    return process_loop.run(
        astream_reply(chain=chain, messages=messages, build=build, on_delta=on_delta, tools=tools)
    )


async def astream_reply(
    *,
    chain: list[ModelProfile],
    messages: list[ChatMessage] | None = None,
    build: PromptBuilder | None = None,
    on_delta: Callable[[str], None],
    tools: ToolLoop | None = None,
) -> Reply:
    """Stream an answer, calling `on_delta` with each piece of text as it arrives.

    `chain` is the profile and its fallbacks (`profile_chain()`). The prompt is
    `build(candidate, squeeze)` (squeeze 0 normally, higher after a context-length
    error asks for a smaller prompt), or `messages` after the candidate's system
    prompt. Raises ModelError (with `attempts`) when every profile failed before
    producing text.

    With `tools` (apps/providers/tool_loop.py), a profile that supports tools is offered
    them: when it answers with tool calls, they are run and it is asked again, within the
    loop's bounds. Text of every step is streamed and is part of the answer. A profile
    failing after some calls ran hands over to its fallback with their results, so no
    action is taken twice. The usage of every step counts towards the answer.
    """
    if build is None:
        fixed = list(messages or [])

        def build(candidate: ModelProfile, squeeze: int) -> list[ChatMessage]:
            return messages_with_system(candidate, fixed)

    if tools is not None:
        await tools.prepare()
    attempts: list[dict[str, Any]] = []
    spent = Usage()
    last_error: ModelError | None = None
    for candidate in chain:
        provider = candidate.provider

        def skip(reason: str, kind: str, candidate: ModelProfile = candidate) -> None:
            metrics.model_fallback_record(profile=candidate, reason=kind)
            attempts.append(
                {
                    "profile": candidate.name,
                    "profile_id": candidate.pk,
                    "outcome": "skipped",
                    "kind": kind,
                    "reason": reason,
                }
            )

        if not provider.enabled:
            skip("provider disabled", DISABLED)
            continue
        cooling = services.provider_cooldown_remaining(provider=provider)
        if cooling > 0:
            skip(f"provider cooling down ({cooling:.0f}s left)", COOLING_DOWN)
            last_error = ModelError(
                "provider cooling down", retryable=True, kind=COOLING_DOWN, retry_after=cooling
            )
            continue
        try:
            reply = await _answer_candidate(candidate, build, on_delta, attempts, tools, spent)
        except ModelError as error:
            last_error = error
            continue
        return reply
    summary = "; ".join(
        f"{a['profile']}: {a['reason']}" for a in attempts if a["outcome"] != "answered"
    )
    raise ModelError(
        summary or "no profile to answer with",
        retryable=bool(last_error and last_error.retryable),
        status=last_error.status if last_error else None,
        kind=last_error.kind if last_error else "",
        retry_after=last_error.retry_after if last_error else None,
        attempts=attempts,
        tool_calls=list(tools.records) if tools is not None else None,
    )


@dataclass
class _Step:
    """What one request (after its retries) produced."""

    text: str  # what it showed: its lead, the model's text, an interruption note
    content: str  # the model's own text
    usage: Usage
    calls: list[ToolCall]
    first_token_seconds: float | None
    interrupted: bool = False


async def _answer_candidate(
    candidate: ModelProfile,
    build: PromptBuilder,
    on_delta: Callable[[str], None],
    attempts: list[dict[str, Any]],
    tools: ToolLoop | None,
    spent: Usage,
) -> Reply:
    """One profile's answer: one request, or with tools, steps of calls and then the answer."""
    clock = LoopClock()
    first_token_seconds: float | None = None
    while True:
        extra = tools.messages_for(candidate) if tools is not None else []
        shown = tools.shown if tools is not None else ""

        def prompt(
            profile: ModelProfile, squeeze: int, extra: list[ChatMessage] = extra
        ) -> list[ChatMessage]:
            return build(profile, squeeze) + extra

        offset = clock.elapsed()
        step = await _stream_candidate(
            candidate,
            prompt,
            on_delta,
            attempts,
            options=tools.request_options(candidate) if tools is not None else None,
            # A later step's text is its own paragraph.
            lead="\n\n" if shown and not shown.endswith("\n") else "",
        )
        spent.prompt_tokens += step.usage.prompt_tokens
        spent.completion_tokens += step.usage.completion_tokens
        spent.estimated = spent.estimated or step.usage.estimated
        if first_token_seconds is None and step.first_token_seconds is not None:
            first_token_seconds = offset + step.first_token_seconds
        if tools is not None and step.calls and not step.interrupted:
            if tools.may_call(candidate):
                tools.shown += step.text
                await tools.run_calls(candidate, step.content, step.calls)
                continue
            tools.ignored(candidate, step.calls)
        if not step.interrupted:
            attempts.append(_answered(candidate))
        return Reply(
            text=shown + step.text,
            profile=candidate,
            usage=Usage(spent.prompt_tokens, spent.completion_tokens, spent.estimated),
            attempts=attempts,
            interrupted=step.interrupted,
            first_token_seconds=first_token_seconds,
            tool_calls=list(tools.records) if tools is not None else [],
        )


async def _stream_candidate(
    candidate: ModelProfile,
    build: PromptBuilder,
    on_delta: Callable[[str], None],
    attempts: list[dict[str, Any]],
    *,
    options: dict[str, Any] | None = None,
    lead: str = "",
) -> _Step:
    """One request to one profile: retries with backoff, squeezes the prompt on
    context-length errors. `lead` is shown before its first piece of text, if any."""
    provider = candidate.provider
    max_wait = float(settings.MODEL_RETRY_MAX_WAIT_SECONDS)
    squeeze = 0
    retry = 0
    while True:
        prompt = build(candidate, squeeze)
        parts: list[str] = []
        calls: list[ToolCall] = []
        usage: Usage | None = None
        clock = LoopClock()
        first_token_seconds: float | None = None
        try:
            async for item in _timed_stream(candidate, prompt, options):
                if isinstance(item, Usage):
                    usage = item
                    continue
                if isinstance(item, list):
                    calls = item
                    continue
                if first_token_seconds is None:
                    first_token_seconds = clock.elapsed()
                    if lead:
                        parts.append(lead)
                        on_delta(lead)
                parts.append(item)
                on_delta(item)
        except ModelError as error:
            if parts:
                # The user has seen part of this answer: end it rather than start over.
                logger.warning("profile %s broke off mid-answer: %s", candidate.name, error)
                metrics.model_call_record(
                    profile=candidate,
                    outcome="interrupted",
                    seconds=clock.elapsed(),
                    first_token_seconds=first_token_seconds,
                )
                if error.kind in _PROVIDER_FAULTS:
                    services.provider_failure_record(provider=provider, error=str(error))
                note = ("\n\n" if not parts[-1].endswith("\n") else "\n") + INTERRUPTED_NOTE
                on_delta(note)
                text = "".join(parts) + note
                attempts.append(_answered(candidate, interrupted=str(error)))
                return _Step(
                    text=text,
                    content=text.removeprefix(lead),
                    usage=_estimated_usage(prompt, text),
                    calls=[],
                    first_token_seconds=first_token_seconds,
                    interrupted=True,
                )
            metrics.model_call_record(
                profile=candidate,
                outcome="failed",
                seconds=clock.elapsed(),
                error_kind=error.kind,
            )
            if error.kind == CONTEXT_LENGTH and squeeze < MAX_SQUEEZE:
                squeeze += 1
                attempts.append(_failed(candidate, error, "retrying with a shorter context"))
                continue
            if error.kind in _PROVIDER_FAULTS:
                cooling = services.provider_failure_record(provider=provider, error=str(error))
            else:
                cooling = False
            if error.kind in _RETRY_SAME_PROVIDER and retry < provider.max_retries and not cooling:
                delay = retry_delay(attempt=retry, retry_after=error.retry_after)
                if delay <= max_wait:
                    attempts.append(_failed(candidate, error, f"retrying in {delay:.1f}s"))
                    metrics.model_retry_record(profile=candidate)
                    retry += 1
                    await asyncio.sleep(delay)
                    continue
            logger.warning("profile %s failed: %s", candidate.name, error)
            attempts.append(
                _failed(candidate, error, "falling back" if candidate.fallback_id else "")
            )
            if candidate.fallback_id:
                metrics.model_fallback_record(profile=candidate, reason="failed")
            raise
        metrics.model_call_record(
            profile=candidate,
            outcome="answered",
            seconds=clock.elapsed(),
            first_token_seconds=first_token_seconds,
        )
        services.provider_success_record(provider=provider)
        text = "".join(parts)
        return _Step(
            text=text,
            content=text.removeprefix(lead),
            usage=usage or _estimated_usage(prompt, text),
            calls=calls,
            first_token_seconds=first_token_seconds,
        )


def _failed(candidate: ModelProfile, error: ModelError, then: str) -> dict[str, Any]:
    return {
        "profile": candidate.name,
        "profile_id": candidate.pk,
        "outcome": "failed",
        "kind": error.kind,
        "status": error.status,
        "reason": str(error) + (f" ({then})" if then else ""),
    }


def _answered(candidate: ModelProfile, interrupted: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {
        "profile": candidate.name,
        "profile_id": candidate.pk,
        "outcome": "answered",
        "kind": "",
        "reason": "",
    }
    if interrupted:
        entry["outcome"] = "interrupted"
        entry["reason"] = interrupted
    return entry


def _estimated_usage(prompt: list[ChatMessage], text: str) -> Usage:
    return Usage(
        prompt_tokens=sum(estimate_message_tokens(m) for m in prompt),
        completion_tokens=estimate_tokens(text),
        estimated=True,
    )


def complete(*, profile: ModelProfile, messages: list[ChatMessage]) -> Reply:
    """A whole answer to `messages` as given (no system prompt added), with fallbacks.

    Used for housekeeping calls such as summarizing older turns.
    """
    return stream_reply(
        profile=profile, build=lambda candidate, squeeze: messages, on_delta=_ignore
    )


def _ignore(delta: str) -> None:
    pass


def transcribe(*, profile: ModelProfile, audio: bytes, file_name: str, mime_type: str = "") -> str:
    """Speech to text through the provider's /audio/transcriptions with the profile's model."""
    if not profile.transcription_model:
        raise ModelError(
            "this profile has no transcription model", retryable=False, kind=BAD_REQUEST
        )
    import openai

    async def call():
        with _clients_for(profile.provider).lease() as client:
            return await client.audio.transcriptions.create(
                model=profile.transcription_model,
                file=(file_name or "voice.ogg", audio, mime_type or "application/octet-stream"),
            )

    try:
        result = process_loop.run(call())
    except openai.OpenAIError as exc:
        raise _error_from(exc) from exc
    return (getattr(result, "text", "") or "").strip()
