"""Persistent mode: Telegram long polling and the connector supervisor, on a real worker."""

from __future__ import annotations

import io
import os
import signal
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connections

from apps.bots.choices import ConnectionMode
from apps.bots.connectors.supervisor import Supervisor
from apps.bots.models import Bot
from apps.bots.platforms.telegram.connector import TelegramPoller
from apps.bots.services import bot_update
from apps.conversations.choices import Direction, MessageStatus
from apps.conversations.models import Message
from tests.fakes.server import wait_for
from tests.telegram_updates import private_text_update


@pytest.fixture
def fast_polling(settings):
    settings.TELEGRAM_POLL_TIMEOUT = 1
    settings.TELEGRAM_POLL_WATCHDOG_MARGIN = 1
    settings.TELEGRAM_POLL_BACKOFF_MAX = 1
    return settings


def answered_texts() -> list[str]:
    """The users' messages that were answered (once each) and whose answers are delivered.

    Messages that arrive together are answered together in one turn. The users' messages
    and their states are read in one query: read apart, a message arriving between the two
    reads would be counted as answered.
    """
    inbound = list(
        Message.objects.filter(direction=Direction.IN).order_by("id").values_list("text", "status")
    )
    if any(status != MessageStatus.ANSWERED for _text, status in inbound):
        return []
    # An answered message's answer was recorded with it: this read, after, sees it.
    if (
        Message.objects.filter(direction=Direction.OUT)
        .exclude(status=MessageStatus.DELIVERED)
        .exists()
    ):
        return []
    return [text for text, _status in inbound]


def wait_answered(count: int) -> list[str]:
    return wait_for(lambda: t if len(t := answered_texts()) >= count else None, timeout=60)


class Running:
    """Runs a connector or the supervisor in a thread until the test ends."""

    def __init__(self, target):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(target,), daemon=True)
        self.thread.start()

    def _run(self, target) -> None:
        try:
            target(self.stop)
        finally:
            connections.close_all()  # a connector run alone (no supervisor to close it)

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive()


def test_long_polling_survives_a_stall_and_failures_without_loss_or_duplicates(
    worker, telegram_bot, fake_telegram, fake_openai, fast_polling
):
    fake_telegram.webhook = {"url": "https://old.example.com/hook"}  # left from webhook mode
    bot_update(bot=telegram_bot, connection_mode=ConnectionMode.PERSISTENT)
    first = private_text_update("one")
    fake_telegram.push_update(first)

    poller = TelegramPoller(telegram_bot)
    running = Running(poller.run)
    assert wait_answered(1) == ["one"]
    assert fake_telegram.sent("deleteWebhook") and not fake_telegram.webhook
    assert [c["command"] for c in fake_telegram.commands] == ["start", "help", "reset", "model"]

    # The next poll hangs like a dead connection: the watchdog abandons it.
    fake_telegram.stall_polls(1)
    wait_for(lambda: fake_telegram.stalls == 0)
    # Then the API fails for a while (502, 500, 429) while users keep writing.
    fake_telegram.fail("getUpdates", 502)
    fake_telegram.fail("getUpdates", 500)
    fake_telegram.fail("getUpdates", 429, retry_after=1)
    fake_telegram.push_update(private_text_update("two"))
    fake_telegram.push_update(private_text_update("three"))

    assert wait_answered(3) == ["one", "two", "three"]
    failed = [c.status for c in fake_telegram.sent("getUpdates") if c.status != 200]
    assert sorted(failed) == [429, 500, 502]
    assert poller.status == "polling"

    # A restart picks up where the last one stopped: nothing lost, nothing repeated.
    running.halt()
    last = Bot.objects.get(pk=telegram_bot.pk).poll_offset
    fake_telegram.push_update(private_text_update("four"))
    running = Running(TelegramPoller(Bot.objects.get(pk=telegram_bot.pk)).run)
    assert wait_answered(4) == ["one", "two", "three", "four"]
    running.halt()
    assert Bot.objects.get(pk=telegram_bot.pk).poll_offset == last + 1
    # Each turn's answer was sent once ("two" and "three" usually arrive in one batch
    # and are answered together in one turn).
    turns = len(fake_openai.requests)
    assert turns == Message.objects.filter(direction=Direction.OUT).count()
    assert turns in (3, 4)
    assert len(fake_telegram.sent("sendMessage", ok_only=True)) == turns
    asked = [
        [m["content"] for m in r["messages"] if m["role"] == "user"] for r in fake_openai.requests
    ]
    assert asked[-1][-1] == "four", asked


def test_supervisor_picks_up_a_bot_switched_to_persistent_mode_and_follows_changes(
    worker, telegram_bot, fake_telegram, fake_openai, fast_polling
):
    supervisor = Supervisor(reload_seconds=0.2)
    running = Running(supervisor.run)
    fake_telegram.push_update(private_text_update("hello from polling"))

    bot_update(bot=telegram_bot, connection_mode=ConnectionMode.PERSISTENT)

    assert wait_answered(1) == ["hello from polling"]
    row = wait_for(
        lambda: (
            b if (b := Bot.objects.get(pk=telegram_bot.pk)).connector_status == "polling" else None
        )
    )
    assert row.connector_heartbeat_at is not None

    # A changed bot restarts with its new settings (it deletes the webhook again).
    bot_update(bot=telegram_bot, name="renamed")
    wait_for(lambda: len(fake_telegram.sent("deleteWebhook")) >= 2)

    # A disabled bot's connector stops.
    bot_update(bot=telegram_bot, enabled=False)
    wait_for(lambda: Bot.objects.get(pk=telegram_bot.pk).connector_status == "stopped")
    assert supervisor.slots == {}
    running.halt()


def test_supervisor_restarts_a_connector_that_died(
    worker, telegram_bot, fake_telegram, fake_openai, fast_polling
):
    fake_telegram.fail("getMe", 401, description="Unauthorized")  # the first start dies
    bot_update(bot=telegram_bot, connection_mode=ConnectionMode.PERSISTENT)
    running = Running(Supervisor(reload_seconds=0.2).run)
    fake_telegram.push_update(private_text_update("still there?"))

    assert wait_answered(1) == ["still there?"]
    assert [c.status for c in fake_telegram.sent("getMe")][:2] == [401, 200]
    running.halt()
    assert Bot.objects.get(pk=telegram_bot.pk).connector_status == "stopped"


def test_run_connectors_polls_until_sigterm_then_stops_cleanly(
    transactional_db, telegram_bot, fake_telegram, fast_polling
):
    bot_update(bot=telegram_bot, connection_mode=ConnectionMode.PERSISTENT)

    def terminate_once_polling():
        try:
            wait_for(lambda: Bot.objects.get(pk=telegram_bot.pk).connector_status == "polling")
        finally:
            connections.close_all()
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_polling, daemon=True)
    killer.start()
    output = io.StringIO()

    call_command("run_connectors", reload_seconds=0.2, stdout=output)

    killer.join(5)
    assert "Connectors stopped." in output.getvalue()
    assert Bot.objects.get(pk=telegram_bot.pk).connector_status == "stopped"
    assert fake_telegram.sent("getUpdates")


class HangingConnector:
    """A connector whose first run hangs without a heartbeat (a wedged SDK call)."""

    started: list[HangingConnector] = []

    def __init__(self, bot):
        self.bot = bot
        self.heartbeat = time.monotonic()
        self.status = "connected"
        HangingConnector.started.append(self)
        self.wedged = len(HangingConnector.started) == 1
        self.release = threading.Event()

    def run(self, stop: threading.Event) -> None:
        if self.wedged:
            self.release.wait(30)  # ignores `stop`, never beats
            return
        while not stop.wait(0.05):
            self.heartbeat = time.monotonic()


def test_supervisor_abandons_a_stalled_connector_and_starts_a_new_one(
    transactional_db, telegram_bot
):
    HangingConnector.started = []
    bot_update(bot=telegram_bot, connection_mode=ConnectionMode.PERSISTENT)
    supervisor = Supervisor(
        reload_seconds=0.1,
        stall_seconds=0.5,
        connectors={"telegram": "tests.bots.test_connectors.HangingConnector"},
    )
    running = Running(supervisor.run)

    second = wait_for(lambda: len(HangingConnector.started) >= 2 and HangingConnector.started[1])
    first = HangingConnector.started[0]
    assert first.wedged and not second.wedged
    wait_for(lambda: Bot.objects.get(pk=telegram_bot.pk).connector_status == "connected")
    running.halt()
    first.release.set()
    assert len(HangingConnector.started) == 2  # the healthy one was left alone


class BeatingConnector:
    """A healthy connector that records each start."""

    started: list[BeatingConnector] = []

    def __init__(self, bot):
        self.heartbeat = time.monotonic()
        self.status = "connected"
        self.stopped = threading.Event()
        BeatingConnector.started.append(self)

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(0.05):
            self.heartbeat = time.monotonic()
        self.stopped.set()


def test_two_supervisors_run_a_bot_once_and_the_standby_takes_over(transactional_db, telegram_bot):
    BeatingConnector.started = []
    bot_update(bot=telegram_bot, connection_mode=ConnectionMode.PERSISTENT)
    registry = {"telegram": "tests.bots.test_connectors.BeatingConnector"}
    active = Supervisor(reload_seconds=0.1, connectors=registry)
    standby = Supervisor(reload_seconds=0.1, connectors=registry)

    running_active = Running(active.run)
    wait_for(lambda: BeatingConnector.started)
    running_standby = Running(standby.run)
    wait_for(lambda: standby.passes >= 3)

    assert len(BeatingConnector.started) == 1  # the standby did not start a second one
    assert standby.slots == {}

    running_active.halt()  # the owner goes away and gives up its lease
    assert BeatingConnector.started[0].stopped.is_set()
    wait_for(lambda: len(BeatingConnector.started) == 2)
    assert list(standby.slots) == [telegram_bot.pk]
    running_standby.halt()
