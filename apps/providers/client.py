"""The model client: the only module that imports openai.

`stream_reply()` streams one answer from a profile, falling back along the
profile's fallback chain when a provider fails before anything was produced.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import openai

from apps.providers.models import ModelProfile, Provider

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False


@dataclass
class Reply:
    """What a finished stream produced, and which profile produced it."""

    text: str
    profile: ModelProfile
    usage: Usage
    skipped: list[str] = field(default_factory=list)


class ModelError(Exception):
    """A model call failed. `retryable` says whether trying again (or elsewhere) can help."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status


_clients: dict[tuple[int, str], openai.OpenAI] = {}
_clients_lock = threading.Lock()


def _client_for(provider: Provider) -> openai.OpenAI:
    # One client (and HTTP connection pool) per provider version, shared by threads.
    key = (provider.pk, provider.updated_at.isoformat() if provider.updated_at else "")
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = openai.OpenAI(
                base_url=provider.base_url,
                api_key=provider.api_key or "not-needed",
                timeout=provider.request_timeout,
                default_headers=provider.extra_headers or None,
                max_retries=0,
            )
            _clients[key] = client
    return client


def _error_from(exc: Exception) -> ModelError:
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status == 429 or status >= 500
        return ModelError(f"HTTP {status}: {exc.message}", retryable=retryable, status=status)
    if isinstance(exc, openai.APITimeoutError):
        return ModelError("timed out", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return ModelError(f"connection failed: {exc}", retryable=True)
    return ModelError(f"{exc.__class__.__name__}: {exc}", retryable=False)


def estimate_tokens(text: str) -> int:
    """A rough count (about four characters a token) for providers that report none."""
    return max(1, len(text) // 4) if text else 0


def _stream_one(profile: ModelProfile, messages: list[ChatMessage]) -> Iterator[str | Usage]:
    provider = profile.provider
    request = dict(
        model=profile.model,
        messages=[{"role": m.role, "content": m.content} for m in messages],
        temperature=profile.temperature,
        max_tokens=profile.max_tokens,
        stream=True,
        stream_options={"include_usage": True},
    )
    try:
        stream = _client_for(provider).chat.completions.create(**request)
        usage = None
        for chunk in stream:
            if chunk.usage is not None:
                usage = Usage(
                    prompt_tokens=chunk.usage.prompt_tokens or 0,
                    completion_tokens=chunk.usage.completion_tokens or 0,
                )
            for choice in chunk.choices:
                if choice.delta and choice.delta.content:
                    yield choice.delta.content
        if usage is not None:
            yield usage
    except openai.OpenAIError as exc:
        raise _error_from(exc) from exc


def profile_chain(profile: ModelProfile) -> list[ModelProfile]:
    """The profile followed by its fallbacks, each once, enabled providers only."""
    chain: list[ModelProfile] = []
    seen: set[int] = set()
    current: ModelProfile | None = profile
    while current is not None and current.pk not in seen:
        seen.add(current.pk)
        chain.append(current)
        current = current.fallback
    return chain


def stream_reply(
    *,
    profile: ModelProfile,
    messages: list[ChatMessage],
    on_delta: Callable[[str], None],
) -> Reply:
    """Stream an answer, calling `on_delta` with each piece of text as it arrives.

    Falls back along the chain while nothing has been produced; once text has been
    produced a failure is raised, since the user has already seen part of an answer.
    """
    skipped: list[str] = []
    last_error: ModelError | None = None
    for candidate in profile_chain(profile):
        if not candidate.provider.enabled:
            skipped.append(f"{candidate.name}: provider disabled")
            continue
        system = [ChatMessage("system", candidate.system_prompt)] if candidate.system_prompt else []
        parts: list[str] = []
        usage: Usage | None = None
        try:
            for item in _stream_one(candidate, system + messages):
                if isinstance(item, Usage):
                    usage = item
                else:
                    parts.append(item)
                    on_delta(item)
        except ModelError as error:
            if parts:
                raise
            logger.warning("profile %s failed: %s", candidate.name, error)
            skipped.append(f"{candidate.name}: {error}")
            last_error = error
            continue
        text = "".join(parts)
        if usage is None:
            prompt_text = "".join(m.content for m in system + messages)
            usage = Usage(estimate_tokens(prompt_text), estimate_tokens(text), estimated=True)
        return Reply(text=text, profile=candidate, usage=usage, skipped=skipped)
    raise ModelError(
        "; ".join(skipped) or "no profile to answer with",
        retryable=bool(last_error and last_error.retryable),
    )
