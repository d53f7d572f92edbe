"""Telegram long polling: getUpdates in a loop, for bots without a public webhook URL."""

from __future__ import annotations

import json
import logging
import threading
import time

from django.conf import settings
from telegram.error import Conflict, InvalidToken, TelegramError

from apps.bots.models import Bot
from apps.bots.platforms.base import WebhookRejected
from apps.bots.platforms.telegram.adapter import TelegramAdapter
from apps.bots.services import bot_identity_store, event_receive
from apps.core.retry import backoff_delay

logger = logging.getLogger(__name__)


class TelegramPoller:
    """Long-polls one bot's updates and ingests them, persisting the offset after each.

    The offset moves past an update only once it is stored, so a restart neither loses
    updates nor repeats them (ingest dedups the rare overlap). A poll that does not
    return within its timeout plus a margin is abandoned (the watchdog); network and
    server errors back off exponentially and recover.
    """

    def __init__(self, bot: Bot):
        self.bot = bot
        self.adapter = TelegramAdapter(bot)
        self.heartbeat = time.monotonic()
        self.status = "starting"
        self.poll_timeout = int(settings.TELEGRAM_POLL_TIMEOUT)
        self.watchdog_margin = float(settings.TELEGRAM_POLL_WATCHDOG_MARGIN)
        self.backoff_max = float(settings.TELEGRAM_POLL_BACKOFF_MAX)

    def run(self, stop: threading.Event) -> None:
        offset = Bot.objects.filter(pk=self.bot.pk).values_list("poll_offset", flat=True).first()
        prepared = False
        failures = 0
        while not stop.is_set():
            self.heartbeat = time.monotonic()
            try:
                if not prepared:
                    username = self.adapter.prepare_polling()  # deleteWebhook, setMyCommands
                    bot_identity_store(bot=self.bot, username=username)
                    prepared = True
                updates = self.adapter.poll(
                    offset=offset,
                    timeout=self.poll_timeout,
                    watchdog=self.poll_timeout + self.watchdog_margin,
                    should_stop=stop.is_set,
                )
            except InvalidToken:
                self.status = "failed: Telegram rejected the token"
                raise
            except Conflict as error:
                # Someone set a webhook meanwhile: delete it again before polling.
                prepared = False
                failures += 1
                self._back_off(stop, failures, f"conflict: {error}")
                continue
            except (TelegramError, TimeoutError, OSError) as error:
                failures += 1
                self._back_off(stop, failures, f"{error.__class__.__name__}: {error}")
                continue
            failures = 0
            self.heartbeat = time.monotonic()
            self.status = "polling"
            for update in updates:
                offset = self._ingest(update)

    def _ingest(self, update) -> int:
        """Store one update, then move the offset past it (in that order)."""
        # The same path as a webhook body: what cannot be used is kept as an
        # unprocessed event, so a malformed update never blocks the ones behind it.
        body = json.dumps(update.to_dict()).encode()
        try:
            event_receive(bot=self.bot, body=body, adapter=self.adapter)
        except WebhookRejected as error:
            if error.status >= 500:
                raise  # could not be understood *yet*: retried, never skipped
            logger.error("update %s is not readable JSON: %s", update.update_id, error)
        offset = update.update_id + 1
        # update(): the offset is state, not configuration (updated_at stays).
        Bot.objects.filter(pk=self.bot.pk).update(poll_offset=offset)
        return offset

    def _back_off(self, stop: threading.Event, failures: int, reason: str) -> None:
        delay = backoff_delay(attempt=failures, base=0.5, cap=self.backoff_max, jitter=False)
        self.status = f"retrying in {delay:.0f}s after {reason}"[:200]
        logger.warning("bot %s: polling failed (%s); retrying in %.1fs", self.bot.pk, reason, delay)
        self.heartbeat = time.monotonic()
        stop.wait(delay)
