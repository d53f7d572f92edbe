"""Whether the process that took some work still lives, known within seconds.

Each process that takes work (a worker taking a conversation, holding a turn's or a
delivery's lock) has an id of its own: host, pid and a random part, so a restarted
process is a new one. A daemon thread, not the event loop (a busy loop must not look
dead), refreshes `assistant:alive:<id>` every second with a lifetime of
`PROCESS_ALIVE_SECONDS`. After a `kill -9` that key is gone within that time, and the
sweeper gives the dead process's work to another at once, instead of waiting for its
locks to expire or for a lost task's message to look stale.

What a process has taken is a Redis set per process (`taken_key`); its locks' tokens
start with its id (apps.core.locks).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading

import redis
from django.conf import settings

from apps.core.redis import as_text, get_redis

logger = logging.getLogger(__name__)

ALIVE_PREFIX = "assistant:alive:"
TAKEN_PREFIX = "assistant:taken:"
BEAT_SECONDS = 1.0


class Liveness:
    """This process's id and the thread that keeps saying it is alive."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._id: str | None = None
        self._thread: threading.Thread | None = None

    @property
    def id(self) -> str:
        """This process's id; the first call starts the heartbeat."""
        with self._lock:
            if self._id is None:
                self._id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
            if self._thread is None or not self._thread.is_alive():
                self._beat()  # alive before anything is taken under this id
                self._thread = threading.Thread(
                    target=self._keep_beating, name="liveness", daemon=True
                )
                self._thread.start()
            return self._id

    def beat_with(self, pipe) -> None:
        """Add "alive" to a pipeline (sync or async) that notes work under this id: what a
        process takes never shows up without its heartbeat, even just after Redis lost
        its keys (a restart, a flush)."""
        pipe.set(ALIVE_PREFIX + self.id, "1", px=int(settings.PROCESS_ALIVE_SECONDS * 1000))

    def _beat(self) -> None:
        assert self._id is not None
        try:
            get_redis().set(
                ALIVE_PREFIX + self._id, "1", px=int(settings.PROCESS_ALIVE_SECONDS * 1000)
            )
        except redis.RedisError as error:
            # Redis away: nobody can see our work either; the next beat tries again.
            logger.warning("could not say this process is alive: %s", error)

    def _keep_beating(self) -> None:
        stop = threading.Event()
        while not stop.wait(BEAT_SECONDS):
            self._beat()

    def forget(self) -> None:
        """A forked child is another process: a new id, its own heartbeat."""
        self._lock = threading.Lock()
        self._id = None
        self._thread = None


liveness = Liveness()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=liveness.forget)


def taken_key(process_id: str) -> str:
    """The set of conversations the process has taken (its queue's tasks it received)."""
    return TAKEN_PREFIX + process_id


def owner_of(token: bytes | str | None) -> str | None:
    """The process that holds a lock, from its token ("<process id>/<random>")."""
    if token is None:
        return None
    owner, _, _ = as_text(token).rpartition("/")
    return owner or None


def dead(process_ids: set[str]) -> set[str]:
    """Which of these processes no longer beat."""
    ordered = sorted(process_ids)
    if not ordered:
        return set()
    beating = get_redis().mget([ALIVE_PREFIX + process_id for process_id in ordered])
    return {process_id for process_id, beat in zip(ordered, beating, strict=True) if beat is None}


def dead_processes_taken() -> dict[str, set[int]]:
    """Processes that took conversations and no longer beat, with those conversations."""
    client = get_redis()
    ids = {as_text(key)[len(TAKEN_PREFIX) :] for key in client.scan_iter(TAKEN_PREFIX + "*")}
    return {
        process_id: {int(member) for member in client.smembers(taken_key(process_id))}
        for process_id in dead(ids)
    }
