"""`manage.py onboard`: set up a real bot step by step (or from flags with --non-interactive).

This module only asks and prints; the questions, the writes and the checks are in
apps/bots/onboarding.py.
"""

from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.bots import onboarding
from apps.bots.onboarding import (
    BOT_QUESTIONS,
    PLATFORM_SETUPS,
    PROFILE_QUESTIONS,
    PROVIDER_QUESTIONS,
    Question,
    SetupFailed,
)

INTERACTIVE_WAIT_SECONDS = 300.0


def shell_language() -> str:
    """The wizard's language from the shell's locale (zh_CN.UTF-8 → zh-hans), else LANGUAGE_CODE."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "").lower()
        if value.startswith("zh"):
            return "zh-hans"
        if value.startswith("en"):
            return "en"
    return settings.LANGUAGE_CODE


HELP = _(
    "Set up a real bot step by step: a model provider (its key checked), a model "
    "profile and a Telegram, Feishu / Lark or web-chat bot, connected and tested. "
    "--non-interactive takes every answer from flags."
)


class Command(BaseCommand):
    help = ""  # HELP, in the shell's language: see create_parser (argparse needs a str)
    stealth_options = ("stdin",)

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --help speaks the shell's language, like the wizard.
        with translation.override(shell_language()):
            self.help = str(HELP)
            return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument(
            "--non-interactive",
            action="store_true",
            help=gettext("Ask nothing: take the answers from the flags; exit 1 on any error."),
        )
        parser.add_argument(
            "--language",
            choices=[code for code, _name in settings.LANGUAGES],
            help=gettext("The wizard's language (default: from LANG, else LANGUAGE_CODE)."),
        )
        seen: set[str] = set()
        for question in (
            *PROVIDER_QUESTIONS,
            *PROFILE_QUESTIONS,
            *BOT_QUESTIONS,
            *onboarding.platform_questions(),
        ):
            if question.option in seen:
                continue
            seen.add(question.option)
            help_text = str(question.prompt)
            if question.secret:
                help_text = gettext("%(prompt)s. Or set $%(variable)s.") % {
                    "prompt": question.prompt,
                    "variable": secret_variable(question),
                }
            parser.add_argument(question.option, dest=question.dest, help=help_text)
        parser.add_argument(
            "--save-anyway",
            action="store_true",
            help=gettext("Save a provider or bot even when its credentials could not be checked."),
        )
        parser.add_argument(
            "--wait-seconds",
            type=float,
            help=gettext(
                "How long to wait for the bot's first message, to verify the platform's "
                "settings (default: 300 interactively, 0 with --non-interactive)."
            ),
        )
        parser.add_argument(
            "--chat-id",
            help=gettext(
                "Where to send the test message (Telegram/Feishu chat id). Default: the chat "
                "of the first message received while waiting."
            ),
        )

    def handle(self, *args, **options):
        language = options["language"] or shell_language()
        with translation.override(language):
            Wizard(self, options).run()


def secret_variable(question: Question) -> str:
    return "ONBOARD_" + question.dest.upper()


class Wizard:
    """One run of the wizard: asks (or reads flags), creates, connects, verifies, tests."""

    def __init__(self, command: Command, options: dict[str, Any]):
        self.command = command
        self.stdout = command.stdout
        self.style = command.style
        self.options = options
        self.interactive = not options["non_interactive"]
        self.stdin = options.get("stdin") or sys.stdin
        self.problems: list[str] = []

    # Output ----------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        self.stdout.write(text)

    def ok(self, text: str) -> None:
        self.stdout.write(self.style.SUCCESS("✓ " + text))

    def bad(self, text: str) -> None:
        self.stdout.write(self.style.ERROR("✗ " + text))

    def heading(self, text: str) -> None:
        self.stdout.write("\n" + self.style.MIGRATE_HEADING(text))

    # Input -----------------------------------------------------------------------------

    def _read(self, prompt: str, *, secret: bool) -> str:
        if secret and self.stdin.isatty():
            return getpass.getpass(prompt)
        self.stdout.write(prompt, ending="")
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            raise CommandError(gettext("No more input: the set-up stopped here."))
        answer = line.rstrip("\r\n")
        if not self.stdin.isatty():  # scripted input is not echoed: show it (never a secret)
            self.stdout.write("" if secret else answer)
        return answer

    def _flag_value(self, question: Question) -> str | None:
        value = self.options.get(question.dest)
        if value is None and question.secret:
            value = os.environ.get(secret_variable(question))
        return value

    def ask(self, question: Question, answers: dict[str, Any]) -> str:
        given = self._flag_value(question)
        default = given if given is not None else question.default_for(answers)
        if self.interactive and not question.secret and answers.get(question.field):
            default = answers[question.field]  # asked again: offer the earlier answer
        if not self.interactive:
            if question.required and not default:
                raise CommandError(
                    gettext("%(flag)s is needed with --non-interactive (%(prompt)s).")
                    % {"flag": question.option, "prompt": question.prompt}
                )
            if question.choices and default not in question.choices:
                raise CommandError(
                    gettext("%(flag)s must be one of: %(choices)s.")
                    % {"flag": question.option, "choices": ", ".join(question.choices)}
                )
            return default
        while True:
            shown = "" if question.secret else default
            if question.secret and default:
                shown = gettext("Enter keeps the one given")
            prompt = f"{question.prompt}" + (f" [{shown}]" if shown else "") + ": "
            value = self._read(prompt, secret=question.secret).strip() or default
            if question.required and not value:
                self.bad(gettext("An answer is needed here."))
                continue
            if question.choices and value not in question.choices:
                self.bad(
                    gettext("Answer one of: %(choices)s.")
                    % {"choices": ", ".join(question.choices)}
                )
                continue
            return value

    def confirm(self, prompt: str, *, default: bool) -> bool:
        if not self.interactive:
            return False
        hint = gettext("[Y/n]") if default else gettext("[y/N]")
        while True:
            value = self._read(f"{prompt} {hint} ", secret=False).strip().lower()
            if not value:
                return default
            if value in ("y", "yes", "是", "好"):
                return True
            if value in ("n", "no", "否", "不"):
                return False

    def fill(self, questions, answers: dict[str, Any], *, only: set[str] | None = None):
        for question in questions:
            if only is not None and question.field not in only:
                continue
            if question.asked(answers):
                answers[question.field] = self.ask(question, answers)
            else:
                answers.pop(question.field, None)

    # Steps -----------------------------------------------------------------------------

    def create(self, what: str, questions, answers: dict[str, Any], create) -> Any:
        """Ask `questions` not answered yet, then create; on errors say why and ask again."""
        self.fill([question for question in questions if question.field not in answers], answers)
        save_anyway = self.options["save_anyway"]
        while True:
            data = {
                question.field: answers[question.field]
                for question in questions
                if not question.setting and question.field in answers
            }
            try:
                return create(data, save_anyway)
            except SetupFailed as error:
                self.report_errors(error, questions)
                if not self.interactive:
                    hint = ""
                    if error.can_save_anyway:
                        hint = "\n" + gettext(
                            "Add --save-anyway to save it without checking the credentials."
                        )
                    raise CommandError(
                        gettext("Could not create the %(what)s.") % {"what": what} + hint
                    ) from error
                if error.can_save_anyway and self.confirm(
                    gettext("Save it anyway, without checking the credentials?"), default=False
                ):
                    save_anyway = True
                    continue
                fields = {question.field for question in questions} & set(error.errors)
                self.say(gettext("Please answer again."))
                self.fill(questions, answers, only=fields or None)

    def report_errors(self, error: SetupFailed, questions) -> None:
        labels = {question.field: question for question in questions}
        for field, messages in error.errors.items():
            question = labels.get(field)
            label = ""  # interactively, the question just asked is the context
            if not self.interactive:
                label = f"{question.option if question is not None else field}: " if field else ""
            for message in messages:
                self.bad(label + message)

    def run(self) -> None:
        self.say(self.style.MIGRATE_HEADING(gettext("Set up a bot")))
        if self.interactive:
            self.say(
                gettext("Press Enter to take the answer in [brackets]. Ctrl-C stops at any time.")
            )

        self.heading(gettext("1/5 The model provider"))
        provider = self.create(
            gettext("model provider"),
            PROVIDER_QUESTIONS,
            {},
            lambda data, save_anyway: onboarding.onboard_provider_create(
                data={**data, "save_anyway": save_anyway}
            ),
        )
        self.ok(
            gettext("Provider “%(name)s” saved; %(url)s accepted the key.")
            % {"name": provider.name, "url": provider.base_url}
        )

        self.heading(gettext("2/5 The model profile"))
        profile = self.create(
            gettext("model profile"),
            PROFILE_QUESTIONS,
            {},
            lambda data, save_anyway: onboarding.onboard_profile_create(
                data={**data, "provider": provider.pk}
            ),
        )
        self.ok(
            gettext("Profile “%(name)s” saved (model %(model)s).")
            % {"name": profile.name, "model": profile.model}
        )

        self.heading(gettext("3/5 The bot"))
        answers: dict[str, Any] = {}
        self.fill(BOT_QUESTIONS[:1], answers)
        setup = PLATFORM_SETUPS[answers["platform"]]
        fields = [
            *BOT_QUESTIONS,
            *(question for question in setup.questions if not question.setting),
        ]
        bot = self.create(
            gettext("bot"),
            fields,
            answers,
            lambda data, save_anyway: onboarding.onboard_bot_create(
                data={**data, "profile": profile.pk, "save_anyway": save_anyway}
            ),
        )
        self.ok(
            gettext("Bot “%(name)s” saved (%(platform)s).")
            % {"name": bot.name, "platform": bot.get_platform_display()}
        )

        self.heading(gettext("4/5 Connecting it"))
        self.connect(bot, setup, answers)
        event = self.verify(bot, setup)

        self.heading(gettext("5/5 A test"))
        reply = self.test_turn(profile)
        if reply is not None:
            self.test_message(bot, bot.profile, reply, event)

        self.summary(provider, bot)
        if self.problems:
            raise CommandError(
                gettext("The set-up is saved, but not everything works yet:")
                + "".join(f"\n  - {problem}" for problem in self.problems)
            )

    def connect(self, bot, setup, answers: dict[str, Any]) -> None:
        settings_questions = [question for question in setup.questions if question.setting]
        answers["default_webhook_url"] = onboarding.default_webhook_url(bot=bot)
        self.fill(settings_questions, answers)
        while True:
            try:
                lines = onboarding.bot_connect(bot=bot, answers=answers)
                break
            except SetupFailed as error:
                self.report_errors(error, settings_questions)
                if not self.interactive:
                    raise CommandError(
                        gettext("The bot is saved, but could not be connected.")
                    ) from error
                fields = {question.field for question in settings_questions} & set(error.errors)
                if fields:
                    self.fill(settings_questions, answers, only=fields)
                elif not self.confirm(gettext("Try again?"), default=True):
                    raise CommandError(
                        gettext("The bot is saved, but could not be connected.")
                    ) from error
        for line in lines:
            self.ok(line)
        if bot.platform == "web":
            self.ok(gettext("Web chat: %(url)s") % {"url": onboarding.web_chat_url(bot=bot)})
        for line in onboarding.bot_instructions(bot=bot, answers=answers):
            self.say(line)

    def verify(self, bot, setup) -> onboarding.FirstEvent | None:
        if not setup.waits_for_first_event:
            return None
        seconds = self.options["wait_seconds"]
        if seconds is None:
            seconds = INTERACTIVE_WAIT_SECONDS if self.interactive else 0.0
        if seconds <= 0:
            self.say(
                gettext(
                    "Not waiting for a first message (--wait-seconds 0): the platform's side "
                    "is not verified."
                )
            )
            return None
        while True:
            self.say(
                gettext(
                    "Waiting up to %(seconds)d s for the bot's first message, to verify the "
                    "settings above (Ctrl-C to skip)…"
                )
                % {"seconds": seconds}
            )
            try:
                event = onboarding.first_event_wait(bot=bot, seconds=seconds)
            except KeyboardInterrupt:
                self.say(gettext("Skipped: the platform's side is not verified."))
                return None
            if event is not None:
                break
            self.bad(
                gettext(
                    "Nothing arrived within %(seconds)d s. Check the settings above: the URL "
                    "must be reachable from the internet, the secrets must match, the event "
                    "must be subscribed and the app published; in persistent mode, "
                    "`manage.py run_connectors` must be running."
                )
                % {"seconds": seconds}
            )
            if not self.confirm(gettext("Wait again?"), default=True):
                self.problems.append(gettext("No message from the platform arrived."))
                return None
        if event.stored:
            self.ok(
                gettext("The first message arrived: “%(text)s” (chat %(chat)s).")
                % {"text": event.text[:80], "chat": event.chat_id}
            )
        else:
            self.bad(
                gettext(
                    "An authentic event arrived but could not be used: %(reason)s (kept under "
                    "Bots → Unprocessed events)."
                )
                % {"reason": event.reason}
            )
            self.problems.append(gettext("The first event could not be used."))
        for line in onboarding.first_event_verified(bot=bot, event=event):
            self.ok(line)
        return event

    def test_turn(self, profile) -> str | None:
        """One real turn through the profile; its reply, or None when the model failed."""
        while True:
            self.say(gettext("Asking “%(profile)s” one question…") % {"profile": profile.name})
            reply, error = onboarding.profile_test_turn(profile=profile)
            if not error:
                self.ok(gettext("The model answered: %(reply)s") % {"reply": reply.strip()})
                return reply.strip()
            self.bad(gettext("The model did not answer: %(error)s") % {"error": error})
            if not self.confirm(gettext("Try another model name?"), default=True):
                self.problems.append(gettext("The model did not answer."))
                return None
            model = self.ask(PROFILE_QUESTIONS[0], {})
            try:
                profile = onboarding.onboard_profile_model_change(profile=profile, model=model)
            except SetupFailed as failed:
                self.report_errors(failed, PROFILE_QUESTIONS)

    def test_message(self, bot, profile, reply: str, event) -> None:
        if bot.platform == "web":
            self.ok(
                gettext("Open the web chat and say hello: %(url)s")
                % {"url": onboarding.web_chat_url(bot=bot)}
            )
            return
        chat_id = self.options["chat_id"]
        chat_type = ""
        if not chat_id and event is not None and event.stored:
            chat_id, chat_type = event.chat_id, event.chat_type
        if not chat_id:
            self.say(
                gettext(
                    "No chat to send a test message to (give --chat-id, or send the bot a "
                    "message while the wizard waits)."
                )
            )
            return
        text = gettext("Set-up test from manage.py onboard. “%(profile)s” says: %(reply)s") % {
            "profile": profile.name,
            "reply": reply,
        }
        failure = onboarding.chat_test_message_send(
            bot=bot, chat_id=chat_id, chat_type=chat_type, text=text
        )
        if failure:
            self.bad(
                gettext("The test message to chat %(chat)s was not sent: %(error)s")
                % {"chat": chat_id, "error": failure}
            )
            self.problems.append(gettext("The test message was not sent."))
        else:
            self.ok(gettext("Test message sent to chat %(chat)s.") % {"chat": chat_id})

    def summary(self, provider, bot) -> None:
        self.heading(gettext("Done"))
        base = settings.PUBLIC_BASE_URL.rstrip("/")
        self.say(
            gettext("Bot “%(bot)s” (id %(id)s) answers with “%(profile)s” on “%(provider)s”.")
            % {
                "bot": bot.name,
                "id": bot.pk,
                "profile": bot.profile.name,
                "provider": provider.name,
            }
        )
        self.say(
            gettext("Change it in the admin: %(url)s")
            % {"url": f"{base}/admin/bots/bot/{bot.pk}/change/"}
        )
