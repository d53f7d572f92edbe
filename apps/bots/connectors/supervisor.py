"""Runs one connector thread per persistent-mode bot and keeps them alive."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone
from django.utils.module_loading import import_string
from redis.exceptions import RedisError

from apps.bots.choices import ConnectionMode
from apps.bots.models import Bot
from apps.bots.platforms import connector_paths
from apps.core.redis import get_redis
from apps.core.retry import backoff_delay

logger = logging.getLogger(__name__)

_LEASE_SCRIPT = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass
class _Slot:
    """One bot's connector: the running thread, or when to start the next one."""

    bot_id: uuid.UUID
    updated_at: datetime
    connector: object | None = None
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    error: str = ""
    failures: int = 0
    started_at: float = 0.0
    restart_at: float = 0.0


class Supervisor:
    """Keeps a connector running for every enabled bot in persistent mode.

    Every `reload_seconds` it re-reads the bots: new ones start, changed ones (their
    updated_at moved) restart with the new settings, disabled or switched-back ones stop.
    A connector that dies or whose heartbeat goes stale is restarted with exponential
    backoff. Each bot's connector_status and connector_heartbeat_at show the state.
    """

    def __init__(
        self,
        *,
        reload_seconds: float | None = None,
        stall_seconds: float | None = None,
        backoff_max: float | None = None,
        connectors: dict[str, str] | None = None,
    ):
        self.reload_seconds = reload_seconds or settings.CONNECTORS_RELOAD_SECONDS
        self.stall_seconds = stall_seconds or settings.CONNECTORS_STALL_SECONDS
        self.backoff_max = backoff_max or settings.CONNECTORS_BACKOFF_MAX
        self.connectors = connector_paths() if connectors is None else connectors
        self.slots: dict[uuid.UUID, _Slot] = {}
        self.passes = 0  # reconcile passes done (observable progress)
        # One connector per bot across all run_connectors processes: a Redis lease,
        # renewed every pass, decides which process runs it (Telegram answers 409 to a
        # second poller; a standby process takes over when the owner goes away).
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_seconds = max(15.0, self.reload_seconds * 5)

    def run(self, stop: threading.Event) -> None:
        """Supervise until `stop` is set, then stop every connector."""
        logger.info("connector supervisor started")
        try:
            while not stop.is_set():
                try:
                    self.reconcile()
                except Exception:  # a database hiccup must not end supervision
                    logger.exception("connector supervisor: reconcile failed")
                finally:
                    close_old_connections()
                stop.wait(self.reload_seconds)
        finally:
            self.shutdown()
            connection.close()

    def reconcile(self) -> None:
        """Bring the running connectors in line with the bots' settings (one pass)."""
        wanted = {
            bot.pk: bot
            for bot in Bot.objects.filter(
                enabled=True,
                connection_mode=ConnectionMode.PERSISTENT,
                platform__in=list(self.connectors),
            )
        }
        for bot_id, running in list(self.slots.items()):
            bot = wanted.get(bot_id)
            leased = bot is not None and self._lease(bot_id)
            if bot is None or bot.updated_at != running.updated_at or not leased:
                self._halt(running)
                del self.slots[bot_id]
                if bot is None:
                    self._release(bot_id)
                    self._report(bot_id, "stopped", heartbeat=None)
                elif not leased:
                    logger.warning("bot %s: lease lost; another process runs it", bot_id)
        now = time.monotonic()
        for bot_id, bot in wanted.items():
            slot = self.slots.get(bot_id)
            if slot is None:
                if not self._lease(bot_id):
                    continue  # another run_connectors process runs this bot
                slot = self.slots[bot_id] = _Slot(bot_id=bot_id, updated_at=bot.updated_at)
                self._start(slot, bot)
                continue
            if slot.thread is not None and not slot.thread.is_alive():
                self._schedule_restart(slot, f"failed: {slot.error or 'connector ended'}")
            elif slot.thread is not None and self._stalled(slot, now):
                slot.stop.set()  # abandon it; the thread ends on its own or with the process
                self._schedule_restart(slot, "stalled")
            elif slot.thread is None and now >= slot.restart_at:
                self._start(slot, bot)
            elif slot.thread is not None:
                if now - slot.started_at > 60 and slot.failures:
                    slot.failures = 0  # healthy for a while: the next failure starts over
                self._report(bot_id, getattr(slot.connector, "status", "running"), slot)
        self.passes += 1

    def shutdown(self, *, timeout: float = 5.0) -> None:
        """Stop every connector and wait briefly for them."""
        for slot in self.slots.values():
            slot.stop.set()
        for bot_id, slot in list(self.slots.items()):
            if slot.thread is not None:
                slot.thread.join(timeout)
            self._report(bot_id, "stopped", heartbeat=None)
            self._release(bot_id)
        self.slots.clear()
        logger.info("connector supervisor stopped")

    # Internals -------------------------------------------------------------------------

    def _lease_key(self, bot_id) -> str:
        return f"assistant:connector-lease:{bot_id}"

    def _lease(self, bot_id) -> bool:
        """Take or renew this process's lease on running the bot's connector."""
        return bool(
            get_redis().eval(
                _LEASE_SCRIPT, 1, self._lease_key(bot_id), self.owner, int(self.lease_seconds)
            )
        )

    def _release(self, bot_id) -> None:
        try:
            get_redis().eval(_RELEASE_SCRIPT, 1, self._lease_key(bot_id), self.owner)
        except RedisError:
            logger.warning("could not release the lease of bot %s; it expires", bot_id)

    def _start(self, slot: _Slot, bot: Bot) -> None:
        slot.stop = threading.Event()
        slot.error = ""
        try:
            connector = import_string(self.connectors[bot.platform])(bot)
        except Exception as error:  # noqa: BLE001 - shown in the admin, retried
            slot.error = f"{error.__class__.__name__}: {error}"
            self._schedule_restart(slot, f"failed to start: {slot.error}")
            return
        slot.connector = connector
        slot.started_at = time.monotonic()
        slot.thread = threading.Thread(
            target=self._run_connector,
            args=(slot, connector, slot.stop),
            name=f"connector-{bot.platform}-{bot.pk}",
            daemon=True,
        )
        slot.thread.start()
        self._report(slot.bot_id, "starting", slot)
        logger.info("connector for bot %s (%s) started", bot.pk, bot.name)

    @staticmethod
    def _run_connector(slot: _Slot, connector, stop: threading.Event) -> None:
        try:
            connector.run(stop)
        except Exception as error:  # noqa: BLE001 - reported and restarted
            slot.error = f"{error.__class__.__name__}: {error}"
            logger.exception("connector for bot %s failed", slot.bot_id)
        finally:
            connection.close()

    def _halt(self, slot: _Slot) -> None:
        slot.stop.set()
        if slot.thread is not None:
            slot.thread.join(2.0)

    def _stalled(self, slot: _Slot, now: float) -> bool:
        heartbeat = getattr(slot.connector, "heartbeat", None)
        return heartbeat is not None and now - heartbeat > self.stall_seconds

    def _schedule_restart(self, slot: _Slot, reason: str) -> None:
        slot.failures += 1
        delay = backoff_delay(attempt=slot.failures, base=1.0, cap=self.backoff_max, jitter=False)
        slot.thread = None
        slot.restart_at = time.monotonic() + delay
        logger.warning("connector for bot %s %s; restarting in %.0fs", slot.bot_id, reason, delay)
        self._report(slot.bot_id, f"{reason}; restarting in {delay:.0f}s", heartbeat=None)

    def _report(self, bot_id, status: str, slot: _Slot | None = None, *, heartbeat=...) -> None:
        fields: dict[str, object] = {"connector_status": status[:200]}
        if heartbeat is ...:
            beat = getattr(slot.connector, "heartbeat", None) if slot else None
            age = max(0.0, time.monotonic() - beat) if beat is not None else 0.0
            fields["connector_heartbeat_at"] = timezone.now() - timedelta(seconds=age)
        # update(): runtime state, not configuration (updated_at stays put).
        Bot.objects.filter(pk=bot_id).update(**fields)
