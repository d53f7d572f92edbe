"""What `manage.py onboard` needs from a platform: the questions it asks and the steps
around them, as data. Each platform package declares its `SETUP` (a `PlatformSetup`) in
its own `onboarding.py`, named by its spec (`PlatformSpec.onboarding`); the wizard
(apps/bots/onboarding.py, the command) asks, creates and prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.bots.choices import ConnectionMode

if TYPE_CHECKING:
    from apps.bots.models import Bot

Answers = dict[str, Any]


@dataclass(frozen=True)
class Question:
    """One thing the wizard asks: the field it fills, its flag, how to ask it."""

    field: str  # the serializer field it fills (or a wizard setting: see `setting`)
    prompt: str | Promise
    flag: str = ""  # the --flag of --non-interactive; "--<field>" when empty
    secret: bool = False  # read without echo; may also come from $ONBOARD_<FIELD>
    required: bool = True
    default: str | Callable[[Answers], str] = ""
    choices: tuple[str, ...] = ()
    # Asked only when this is true of the answers so far (e.g. webhook mode only).
    when: Callable[[Answers], bool] | None = None
    setting: bool = False  # not a field of the row: the wizard uses it itself

    @property
    def option(self) -> str:
        return self.flag or "--" + self.field.replace("_", "-")

    @property
    def dest(self) -> str:
        return self.option.removeprefix("--").replace("-", "_")

    def default_for(self, answers: Answers) -> str:
        return self.default(answers) if callable(self.default) else self.default

    def asked(self, answers: Answers) -> bool:
        return self.when is None or self.when(answers)


@dataclass(frozen=True)
class PlatformSetup:
    """One platform in the wizard: its questions, how it is connected, how it is verified."""

    platform: str
    questions: tuple[Question, ...] = ()
    # Connect the saved bot (webhook or long polling); returns lines to print.
    connect: Callable[[Bot, Answers], list[str]] | None = None
    # What the operator must do on the platform's side, printed after connecting.
    instructions: Callable[[Bot, Answers], list[str]] | None = None
    # Whether the wizard waits for the bot's first inbound event to verify the set-up.
    waits_for_first_event: bool = True
    # What the first event proves, given how it arrived.
    verified: Callable[[Bot, FirstEvent], list[str]] | None = None


@dataclass(frozen=True)
class FirstEvent:
    """The first thing a platform delivered for a bot: a stored message, or an unusable event."""

    stored: bool
    chat_id: str = ""
    chat_type: str = ""
    text: str = ""
    reason: str = ""  # why an unprocessed event could not be used


class SetupFailed(Exception):
    """A step could not be done: `errors` maps fields (or "" for the whole step) to reasons.

    `can_save_anyway` is true when the other side could not be asked (nothing refused).
    """

    def __init__(self, errors: dict[str, list[str]], *, can_save_anyway: bool = False):
        super().__init__(
            "; ".join(f"{k}: {' '.join(v)}" if k else " ".join(v) for k, v in errors.items())
        )
        self.errors = errors
        self.can_save_anyway = can_save_anyway


def default_connection_mode() -> str:
    return (
        ConnectionMode.WEBHOOK
        if settings.PUBLIC_BASE_URL.startswith("https://")
        else ConnectionMode.PERSISTENT
    )


def webhook_mode(answers: Answers) -> bool:
    return answers.get("connection_mode") == ConnectionMode.WEBHOOK


CONNECTION_MODE = Question(
    "connection_mode",
    _(
        "Connection mode: “webhook” (the platform calls this server's public https URL) "
        "or “persistent” (no public URL needed; `manage.py run_connectors` keeps the "
        "connection)"
    ),
    choices=tuple(ConnectionMode.values),
    default=lambda answers: default_connection_mode(),
)
WEBHOOK_URL = Question(
    "webhook_url",
    _("The public https URL the platform should call"),
    default=lambda answers: answers.get("default_webhook_url", ""),
    when=webhook_mode,
    setting=True,
)
