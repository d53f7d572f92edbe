"""Log lines: plain or JSON (LOG_FORMAT), with the context they happened in, secrets masked.

`log_context(bot=…, conversation=…, message=…, platform=…, request_id=…)` sets what the
lines logged inside it are about (a context variable: asyncio tasks and threads each
see their own). Only ids go there, never names or texts: users' personal data stays
out of the logs. Secrets a line may still carry (a Telegram token in a URL, an API key
in an error) are masked by both formatters with `apps.core.masking.mask_secret`, and
personal data (phone numbers, e-mail addresses, ID and bank-card numbers quoted in an
error or an exception) with `mask_personal_data`, whatever the bot's settings.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from apps.core.masking import mask_personal_data, mask_secret

CONTEXT_FIELDS = ("bot", "conversation", "message", "platform", "request_id")
# In a JSON line "message" is the text: the ids are named for what they are.
JSON_NAMES = {
    "bot": "bot_id",
    "conversation": "conversation_id",
    "message": "message_id",
    "platform": "platform",
    "request_id": "request_id",
}
_context: ContextVar[Mapping[str, Any] | None] = ContextVar("log_context", default=None)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Lines logged inside are about these (ids only; None leaves a field as it was)."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise TypeError(f"not a log context field: {', '.join(sorted(unknown))}")
    given = {name: str(value) for name, value in fields.items() if value is not None}
    token = _context.set({**current_context(), **given})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> Mapping[str, Any]:
    """The log context in effect here."""
    return _context.get() or {}


def record_factory_install() -> None:
    """Records carry the log context they were made in (`record.log_context`).

    Formatting usually happens at once, in the same context; a handler that formats
    later or elsewhere (a queue, pytest's caplog) still sees what the line was about.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_log_context", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.log_context = current_context()
        return record

    factory.adds_log_context = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_from(headers: Mapping[str, str]) -> str:
    """The proxy's X-Request-Id when it is a sane one, else a new id."""
    given = headers.get("X-Request-Id", "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]


# Masking -------------------------------------------------------------------------------------

_SECRET_PATTERNS = [
    # Telegram bot tokens (inside Bot API URLs too: .../bot<token>/sendMessage).
    (re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}"), 0),
    # OpenAI-style API keys.
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), 0),
    # Authorization: Bearer/Token/Basic <credential>.
    (re.compile(r"(?i)\b(?:bearer|token|basic)\s+([A-Za-z0-9._~+/=-]{8,})"), 1),
    # key=value, "key": "value", key: value for names that hold secrets.
    (
        re.compile(
            r"(?i)\b(?:api[_-]?key|app[_-]?secret|secret|password|passwd|access[_-]?token|"
            r"tenant_access_token|encrypt[_-]?key|verification[_-]?token|authorization)"
            r"[\"']?\s*[:=]\s*[\"']?([^\s\"',&}]{6,})"
        ),
        1,
    ),
]


def redact(text: str) -> str:
    """`text` with anything that looks like a credential or personal data masked."""
    for pattern, group in _SECRET_PATTERNS:
        text = pattern.sub(partial(_masked, group=group), text)
    return mask_personal_data(text)


def _masked(match: re.Match, group: int) -> str:
    whole = match.group(0)
    if group == 0:
        return mask_secret(whole)
    start, end = match.span(group)
    offset = match.start(0)
    secret = whole[start - offset : end - offset]
    return whole[: start - offset] + mask_secret(secret) + whole[end - offset :]


# Formatters ----------------------------------------------------------------------------------


class PlainFormatter(logging.Formatter):
    """The plain one-line format, secrets masked (LOG_FORMAT=plain, the default)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(_JsonFormatter):
    """One JSON object per line (LOG_FORMAT=json): time, level, logger, message, context.

    Only the fields named here are written: `extra=` attributes a caller passed are
    not, so nothing reaches the logs without being chosen for them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__(*args, **kwargs)

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_record["time"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(
            timespec="milliseconds"
        )
        log_record["level"] = record.levelname
        log_record["logger"] = record.name
        log_record["message"] = redact(record.getMessage())
        context = getattr(record, "log_context", None) or current_context()
        for name, value in context.items():
            log_record[JSON_NAMES[name]] = value
        for name in ("exc_info", "stack_info"):
            if message_dict.get(name):
                log_record[name] = redact(message_dict[name])


class Occasional:
    """A recurring line said at most once every `seconds` while a failure lasts.

    For what fails on every call while a shared service is away (Redis restarting: each
    webhook's flood check, each model call's health note), where one line per call says
    nothing more than the first and buries everything else in the log. The next line
    said says how many were left out; `recovered()` (the call worked again) says that
    too, if any were, and makes the next failure be said at once.
    """

    def __init__(
        self,
        logger: logging.Logger,
        seconds: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.seconds, self.clock = logger, seconds, clock
        self._lock = threading.Lock()
        self._failing = False
        self._next_at = 0.0
        self._left_out = 0
        self._last: tuple[int, str, tuple] = (logging.WARNING, "", ())

    def log(self, level: int, message: str, *args: Any, exc_info: Any = None) -> None:
        now = self.clock()
        with self._lock:
            self._last = (level, message, args)
            if self._failing and now < self._next_at:
                self._left_out += 1
                return
            left_out, self._left_out = self._left_out, 0
            self._failing, self._next_at = True, now + self.seconds
        if left_out:
            message += " (and %d more like it since the last said)"
            args = (*args, left_out)
        self.logger.log(level, message, *args, exc_info=exc_info)

    def warning(self, message: str, *args: Any) -> None:
        self.log(logging.WARNING, message, *args)

    def recovered(self) -> None:
        """The call worked: the failure is over (cheap when nothing failed)."""
        if not self._failing:
            return
        with self._lock:
            left_out, self._left_out = self._left_out, 0
            self._failing = False
            level, message, args = self._last
        if left_out:
            self.logger.log(
                level, message + " (and %d more like it, until it worked again)", *args, left_out
            )
