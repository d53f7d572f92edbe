"""The sweeper runs every few seconds: quiet when it finds nothing, loud when it acts."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery.beat import ScheduleEntry, Scheduler
from django.conf import settings
from django.utils import timezone

from apps.conversations.choices import MessageStatus
from apps.conversations.models import Message
from apps.conversations.tasks import SWEEP_LOCK_KEY, SWEEP_LOCK_SECONDS, sweep_stuck_task
from apps.core.redis import get_redis
from assistant.celery import app as celery_app
from tests.factories import make_user_message
from tests.fakes.server import wait_for

SWEEPER = "conversations.sweep_stuck_task"
LOGGERS = ("celery.beat", "celery.app.trace", "apps.conversations.tasks")


def _show_debug(caplog) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)


def _about_the_sweeper(caplog) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name in LOGGERS
        and ("sweep" in record.getMessage() or SWEEPER in record.getMessage())
    ]


def test_a_sweep_that_finds_nothing_logs_only_at_debug(transactional_db, caplog):
    _show_debug(caplog)

    assert sweep_stuck_task.apply().get() == {"turns": 0, "deliveries": 0}

    records = _about_the_sweeper(caplog)
    # Celery's "succeeded" line and the task's own line are there, at DEBUG only.
    assert any(r.name == "celery.app.trace" and "succeeded" in r.getMessage() for r in records)
    assert any(r.name == "apps.conversations.tasks" for r in records)
    assert [r.levelname for r in records] == ["DEBUG"] * len(records)


def test_beat_sends_the_sweeper_at_debug(worker, caplog):
    _show_debug(caplog)
    entry = ScheduleEntry(name="sweep-stuck-messages", task=SWEEPER, app=celery_app)

    Scheduler(app=celery_app, lazy=True).apply_entry(entry)

    beat = [r for r in caplog.records if r.name == "celery.beat"]
    [sending] = [r for r in beat if "Sending due task sweep-stuck-messages" in r.getMessage()]
    assert sending.levelname == "DEBUG"
    assert [r.levelname for r in beat] == ["DEBUG"] * len(beat)


def test_a_sweep_that_redispatches_work_warns(worker, web_bot, fake_openai, caplog):
    fake_openai.reply = "Sorry for the wait."
    stuck = make_user_message(
        bot=web_bot,
        chat_id="visitor",
        text="anyone there?",
        status=MessageStatus.RECEIVED,
        received_at=timezone.now() - timedelta(seconds=settings.SWEEP_RECEIVED_AFTER_SECONDS + 5),
    )

    assert sweep_stuck_task.apply().get() == {"turns": 1, "deliveries": 0}

    [warning] = [r for r in _about_the_sweeper(caplog) if r.levelno >= logging.WARNING]
    assert "re-dispatched stuck work: 1 conversation(s)" in warning.getMessage()
    wait_for(
        lambda: Message.objects.filter(
            reply_to=stuck, status=MessageStatus.DELIVERED, text="Sorry for the wait."
        ).exists()
    )


def test_one_sweep_at_a_time(transactional_db, web_bot):
    # Sweeps beat sent while no worker ran, taken side by side by a restarted one, must
    # not each give the same work again.
    make_user_message(
        bot=web_bot,
        chat_id="visitor",
        text="anyone there?",
        status=MessageStatus.RECEIVED,
        received_at=timezone.now() - timedelta(seconds=settings.SWEEP_RECEIVED_AFTER_SECONDS + 5),
    )
    other = get_redis().lock(SWEEP_LOCK_KEY, timeout=SWEEP_LOCK_SECONDS)
    assert other.acquire(blocking=False)

    assert sweep_stuck_task.apply().get() == {"turns": 0, "deliveries": 0}

    other.release()
    assert sweep_stuck_task.apply().get() == {"turns": 1, "deliveries": 0}
    assert not get_redis().exists(SWEEP_LOCK_KEY)
