"""http_action: call an outside HTTP API with a templated JSON request, answer from its reply.

The request's URL, headers and body are templates filled from the message, the user and
(when a model calls it as a tool) the tool's arguments; the body is signed with
HMAC-SHA256 when a secret is set; transient failures are retried with the project's
backoff; the answer is `reply_template` filled from the JSON response.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from django.utils.translation import gettext_lazy

from apps.core.retry import backoff_delay
from apps.skills.base import Skill, SkillContext, SkillError, SkillResult
from apps.skills.templates import MissingValue, fill, fill_json, template_problem

RETRY_BASE_SECONDS = 0.5
RETRY_CAP_SECONDS = 5.0
RETRYABLE_STATUSES = {408, 425, 429, 500, 502, 503, 504}
FAILURE_REPLY = gettext_lazy("Sorry, I could not do that just now. Please try again later.")

# One connection pool per process for every http_action call (httpx.Client is thread-safe).
_client: httpx.Client | None = None


def _http() -> httpx.Client:
    global _client
    if _client is None:
        _client = httpx.Client(follow_redirects=False)
    return _client


class HttpActionSkill(Skill):
    """A templated JSON request to an outside API; the answer is filled from its response."""

    name = "http_action"
    label = gettext_lazy("HTTP action")
    description = gettext_lazy(
        "Calls an outside HTTP API (e.g. a ticket system) and answers from its JSON reply."
    )
    secret_fields = ("secret", "headers")
    config_schema = {
        "type": "object",
        "required": ["url", "reply_template"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "pattern": "^https?://", "minLength": 8},
            "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"], "default": "POST"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "body": {},
            "secret": {"type": "string"},
            "signature_header": {"type": "string", "minLength": 1, "default": "X-Signature"},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 60, "default": 10},
            "retries": {"type": "integer", "minimum": 0, "maximum": 5, "default": 2},
            "reply_template": {"type": "string", "minLength": 1},
            "failure_reply": {"type": "string"},
            "tool_description": {"type": "string"},
            "tool_parameters": {"type": "object"},
        },
    }

    def config_errors(self, config: Any) -> list[str]:
        errors = super().config_errors(config)
        if errors:
            return errors
        for key in ("url", "reply_template", "failure_reply"):
            problem = template_problem(config.get(key, ""))
            if problem:
                errors.append(f"{key}: {problem}")
        return errors

    def run_time_limit(self, config: dict[str, Any]) -> float:
        tries = config.get("retries", 2) + 1
        return config.get("timeout", 10) * tries + RETRY_CAP_SECONDS * (tries - 1) + 1

    def tool(self, config: dict[str, Any]) -> dict[str, Any] | None:
        if not config.get("tool_description"):
            return None
        return {
            "description": config["tool_description"],
            "parameters": config.get("tool_parameters") or {"type": "object", "properties": {}},
        }

    def handle(self, context: SkillContext) -> SkillResult:
        config = context.config
        failure_reply = config.get("failure_reply") or FAILURE_REPLY
        values = {
            "text": context.text,
            "user_id": context.user_id,
            "user_name": context.user_name,
            "chat_id": context.chat_id,
            "platform": context.platform,
            "bot_name": getattr(context.bot, "name", ""),
            "args": context.arguments,
        }
        method = config.get("method", "POST")
        try:
            url = fill(config["url"], values, url=True)
            headers = {k: fill(v, values) for k, v in (config.get("headers") or {}).items()}
            body = fill_json(config["body"], values) if "body" in config else None
        except MissingValue as error:
            raise SkillError(
                f"the request names {error.args[0]!r}, which this message does not have",
                user_message=failure_reply,
            ) from error
        content = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        if config.get("secret"):
            digest = hmac.new(config["secret"].encode(), content, hashlib.sha256).hexdigest()
            headers[config.get("signature_header", "X-Signature")] = f"sha256={digest}"

        attempts: list[dict[str, Any]] = []
        tries = config.get("retries", 2) + 1
        response = None
        for attempt in range(1, tries + 1):
            started = time.monotonic()
            retry_after = None
            try:
                response = _http().request(
                    method,
                    url,
                    headers=headers,
                    content=content or None,
                    timeout=config.get("timeout", 10),
                )
            except httpx.HTTPError as error:
                outcome, retryable = f"{type(error).__name__}: {error}", True
            else:
                outcome = str(response.status_code)
                retryable = response.status_code in RETRYABLE_STATUSES
                retry_after = _retry_after(response)
            attempts.append(
                {
                    "attempt": attempt,
                    "outcome": outcome,
                    "ms": round((time.monotonic() - started) * 1000),
                }
            )
            if response is not None and response.is_success:
                break
            if not retryable or attempt == tries:
                raise SkillError(
                    f"{method} {_host(url)} failed: {outcome}",
                    user_message=failure_reply,
                    retryable=retryable,
                    details={"attempts": attempts},
                )
            response = None
            time.sleep(
                backoff_delay(
                    attempt=attempt,
                    base=RETRY_BASE_SECONDS,
                    cap=RETRY_CAP_SECONDS,
                    retry_after=min(retry_after, RETRY_CAP_SECONDS) if retry_after else None,
                )
            )
        assert response is not None  # the loop either broke on success or raised
        details = {"attempts": attempts, "status": response.status_code}
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = {}
        try:
            text = fill(config["reply_template"], data)
        except MissingValue as error:
            raise SkillError(
                f"the response has no {error.args[0]!r}",
                user_message=failure_reply,
                details=details,
            ) from error
        return SkillResult(text=text, details=details)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _host(url: str) -> str:
    # Only scheme and host go into errors and logs: paths and queries may carry tokens.
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}" + (f":{parsed.port}" if parsed.port else "")
