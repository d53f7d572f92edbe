"""Whether the process that took some work still lives, known within seconds.

Each process that takes work (a worker taking a conversation, holding a turn's or a
delivery's lock) has an id of its own: host, pid and a random part, so a restarted
process is a new one. A daemon thread, not the event loop (a busy loop must not look
dead), notes the time (Redis's clock) in a sorted set of processes every second. One
whose time is older than `PROCESS_ALIVE_SECONDS` is dead: after a `kill -9` the
sweeper gives its work to another within seconds, instead of waiting for its locks to
expire or for a lost task's message to look stale. A process Redis does not know (just
after a restart or a flush, before its next beat) is not taken for dead.

What a process has taken is a Redis set per process (`taken_key`); its locks' tokens
start with its id (apps.core.locks).
"""

from __future__ import annotations

import collections
import datetime
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings

from apps.core.logs import Occasional
from apps.core.redis import as_text, get_redis

logger = logging.getLogger(__name__)
# With Redis away, every beat and every batch of notes would say so.
_beat_failed = Occasional(logger)
_notes_failed = Occasional(logger)

PROCESSES_KEY = "assistant:processes"  # process id -> time of its latest beat
MOURNED_KEY = "assistant:processes:dead"  # dead process id -> its latest beat, once seen
TAKEN_PREFIX = "assistant:taken:"
BEAT_SECONDS = 1.0
NOTES_GATHER_SECONDS = 0.01

_BEAT_SCRIPT = """
local now = redis.call('TIME')
redis.call('ZADD', KEYS[1], now[1] + now[2] / 1000000, ARGV[1])
"""
_DEAD_SCRIPT = """
local now = redis.call('TIME')
now = now[1] + now[2] / 1000000
-- Forgotten once their locks have surely expired too.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]), 'WITHSCORES')
local ids, new = {}, {}
for i = 1, #dead, 2 do
  table.insert(ids, dead[i])
  -- The first caller to see it dead learns when it last beat (scores stay strings).
  if redis.call('ZADD', KEYS[2], 'NX', dead[i + 1], dead[i]) == 1 then
    table.insert(new, dead[i])
    table.insert(new, dead[i + 1])
  end
end
return {ids, new}
"""


class Liveness:
    """This process's id, and the thread that keeps saying it is alive and writes what
    the process has taken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._id: str | None = None
        self._thread: threading.Thread | None = None
        # ("sadd" | "srem", conversation id), in order, not yet written.
        self._notes: collections.deque[tuple[str, int]] = collections.deque()
        self._wake = threading.Event()

    @property
    def id(self) -> str:
        """This process's id; the first call starts the heartbeat."""
        with self._lock:
            if self._id is None:
                self._id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._keep_beating, args=(self._id,), name="liveness", daemon=True
                )
                self._thread.start()
            return self._id

    def took(self, conversation_id: int) -> None:
        """A turn's task for the conversation reached this process (any thread; never
        waits). Written within milliseconds by this object's thread, which a busy event
        loop does not hold up: the time in which a kill loses the note is short."""
        self._note("sadd", conversation_id)

    def finished(self, conversation_id: int) -> None:
        """This process's run of the conversation ended."""
        self._note("srem", conversation_id)

    def _note(self, command: str, conversation_id: int) -> None:
        self.id  # noqa: B018 - the thread that writes it runs
        self._notes.append((command, conversation_id))
        self._wake.set()

    def _keep_beating(self, process_id: str) -> None:
        next_beat = 0.0
        while True:
            if time.monotonic() >= next_beat:
                try:
                    get_redis().eval(_BEAT_SCRIPT, 1, PROCESSES_KEY, process_id)
                    _beat_failed.recovered()
                except redis.RedisError as error:
                    # Redis away: nobody can see our work either; the next beat tries again.
                    _beat_failed.warning("could not say this process is alive: %s", error)
                next_beat = time.monotonic() + BEAT_SECONDS
            if self._wake.wait(max(0.0, next_beat - time.monotonic())):
                # What else arrives meanwhile goes in the same round trip: under a burst,
                # a write per note would cost the process a thread switch each.
                time.sleep(NOTES_GATHER_SECONDS)
            self._wake.clear()
            self._notes_write(process_id)

    def _notes_write(self, process_id: str) -> None:
        notes = []
        while self._notes:
            notes.append(self._notes.popleft())
        if not notes:
            return
        try:
            with get_redis().pipeline(transaction=False) as pipe:
                for command, conversation_id in notes:
                    getattr(pipe, command)(taken_key(process_id), conversation_id)
                pipe.execute()
            _notes_failed.recovered()
        except redis.RedisError:  # the sweeper's time-outs still find the work
            _notes_failed.warning("could not note %d conversations taken or done", len(notes))

    def forget(self) -> None:
        """A forked child is another process: a new id, its own heartbeat."""
        self.__init__()  # type: ignore[misc]


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


@dataclass(frozen=True)
class Deaths:
    """Processes that beat once and stopped (for `PROCESS_ALIVE_SECONDS` or longer)."""

    dead: set[str]  # all still remembered: their locks may be broken
    just_died: dict[str, datetime.datetime]  # seen dead for the first time: their last beat


def processes_dead() -> Deaths:
    """The dead processes, and those this call is the first to see dead (each is reported
    so once, to one caller: Redis decides, atomically)."""
    forget_after = settings.PROCESS_ALIVE_SECONDS + settings.TURN_LOCK_SECONDS + 60
    ids, new = get_redis().eval(
        _DEAD_SCRIPT, 2, PROCESSES_KEY, MOURNED_KEY, settings.PROCESS_ALIVE_SECONDS, forget_after
    )
    return Deaths(
        dead={as_text(process_id) for process_id in ids},
        just_died={
            as_text(new[i]): datetime.datetime.fromtimestamp(float(new[i + 1]), tz=datetime.UTC)
            for i in range(0, len(new), 2)
        },
    )


def dead_processes_taken(gone: set[str]) -> dict[str, set[int]]:
    """What each of these dead processes had taken and not finished."""
    client = get_redis()
    return {
        process_id: {int(member) for member in client.smembers(taken_key(process_id))}
        for process_id in sorted(gone)
    }
