"""The process loop: one asyncio event loop per process, where the I/O of many turns runs.

Web and worker processes each start one daemon thread running an event loop, the
first time something needs it. Everything that waits on the network in bulk lives
there: model streams, platform sends and edits, typing, websocket events. Long-lived
HTTP clients (and their connection pools) belong to this loop, so they are built
once per process and reused by every turn.

The Django ORM is synchronous: coroutines on the loop reach the database through
`db()`, which runs a function in a small, bounded pool of threads, each with its
own connection (returned to the pool after every call when pooling is on).

The loop also watches its own lag (how late its timers fire). Time-outs that are
meant to measure someone else, such as a model's first token, subtract the time
the loop itself was too busy to look (`LoopClock`), so a busy worker never blames
a healthy provider.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)

T = TypeVar("T")

LAG_TICK_SECONDS = 0.05


class ProcessLoop:
    """A lazily started event loop in a daemon thread, plus a bounded database thread pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._db: concurrent.futures.ThreadPoolExecutor | None = None
        self._io: concurrent.futures.ThreadPoolExecutor | None = None
        # Calls running (or queued) in the threads, counted down by the threads themselves:
        # a coroutine cancelled while it waits does not stop its thread's work.
        self._in_threads = 0
        self._count_lock = threading.Lock()
        # Coroutine functions closing long-lived clients when the process exits.
        self._closers: list[Callable[[], Coroutine[Any, Any, Any]]] = []
        # Lag bookkeeping, written by the loop's monitor task only.
        self.lag_total = 0.0
        self.last_tick = time.monotonic()
        self.last_lag = 0.0  # how late the latest tick fired

    # The loop ---------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                self._start()
            assert self._loop is not None
            return self._loop

    def _start(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.last_tick, self.last_lag = time.monotonic(), 0.0

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.create_task(self._watch_lag())
            loop.run_forever()

        thread = threading.Thread(target=run, name="process-loop", daemon=True)
        thread.start()
        ready.wait()
        self._loop, self._thread = loop, thread

    def in_loop(self) -> bool:
        """True when called from the loop's own thread."""
        return self._thread is not None and threading.current_thread() is self._thread

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coroutine` on the loop and wait for its result (from any other thread)."""
        if self.in_loop():
            coroutine.close()
            raise RuntimeError("ProcessLoop.run() called from the loop itself; await instead")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future:
        """Start `coroutine` on the loop without waiting; failures are logged."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        future.add_done_callback(_log_failure)
        return future

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Call `callback(*args)` in the loop's thread (thread-safe)."""
        if self.in_loop():
            callback(*args)
        else:
            self.loop.call_soon_threadsafe(callback, *args)

    def at_exit(self, closer: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Await `closer()` on the loop when the process exits (close HTTP clients cleanly:
        their connections end, and nothing complains of unclosed sessions at shutdown)."""
        self._closers.append(closer)

    def close_clients(self, timeout: float = 5.0) -> None:
        """Run the `at_exit` closers, if the loop is running (atexit calls this)."""
        thread = self._thread
        if not self._closers or self._loop is None or thread is None or not thread.is_alive():
            return

        async def close_all() -> None:
            for closer in self._closers:
                try:
                    await closer()
                except Exception:  # noqa: BLE001 - exiting anyway; the next one still closes
                    logger.debug("closing a client at exit failed", exc_info=True)

        try:
            self.run(close_all(), timeout=timeout)
        except Exception:  # noqa: BLE001 - a loop too busy to close in time: exit anyway
            logger.debug("clients not closed at exit", exc_info=True)

    # Threads ----------------------------------------------------------------------------

    def _executor(self, kind: str) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if kind == "db":
                if self._db is None:
                    self._db = concurrent.futures.ThreadPoolExecutor(
                        max_workers=settings.ENGINE_DB_THREADS, thread_name_prefix="engine-db"
                    )
                return self._db
            if self._io is None:
                self._io = concurrent.futures.ThreadPoolExecutor(
                    max_workers=settings.ENGINE_IO_THREADS, thread_name_prefix="engine-io"
                )
            return self._io

    async def db(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a synchronous database function in the bounded database threads."""
        return await self._in_thread("db", function, args, kwargs)

    async def blocking(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking call of a synchronous SDK (e.g. Feishu's) in the I/O threads."""
        return await self._in_thread("io", function, args, kwargs)

    async def _in_thread(
        self, kind: str, function: Callable[..., T], args: tuple, kwargs: dict
    ) -> T:
        with self._count_lock:
            self._in_threads += 1
        try:
            future = self._executor(kind).submit(_with_connection, function, args, kwargs)
        except BaseException:
            self._call_done(None)
            raise
        # Finished, failed or cancelled before it started: the count goes down either way.
        future.add_done_callback(self._call_done)
        return await asyncio.wrap_future(future)

    def _call_done(self, _future: concurrent.futures.Future | None) -> None:
        with self._count_lock:
            self._in_threads -= 1

    async def threads_idle(self) -> None:
        """Wait until no call is running in the database or I/O threads."""
        while self._in_threads:
            await asyncio.sleep(LAG_TICK_SECONDS)

    # Lag ----------------------------------------------------------------------------------

    async def _watch_lag(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_TICK_SECONDS)
            now = time.monotonic()
            self.last_lag = max(0.0, now - before - LAG_TICK_SECONDS)
            self.lag_total += self.last_lag
            self.last_tick = now

    def lag_now(self) -> float:
        """How late the loop runs right now: its latest tick's lag, or longer when the
        next tick is already overdue."""
        if self._loop is None:
            return 0.0  # not started: nothing runs late
        return max(self.last_lag, self._overdue())

    def lag_so_far(self) -> float:
        """Seconds the loop has been late in all, including a stretch not yet counted."""
        return self.lag_total + self._overdue()

    def _overdue(self) -> float:
        """How late the next tick already is (0 while it is not yet due)."""
        return max(0.0, time.monotonic() - self.last_tick - LAG_TICK_SECONDS)

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._loop = self._thread = None
        self._db = self._io = None
        self._in_threads = 0
        self._count_lock = threading.Lock()


def _with_connection(function: Callable[..., T], args: tuple, kwargs: dict) -> T:
    # Each pool thread keeps its own connection; a broken or expired one is replaced,
    # and with PostgreSQL pooling it goes back to the pool after the call.
    close_old_connections()
    try:
        return function(*args, **kwargs)
    finally:
        if settings.DATABASES["default"].get("OPTIONS", {}).get("pool"):
            connections.close_all()


def _log_failure(future: concurrent.futures.Future) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        logger.error("background task failed", exc_info=error)


class LoopClock:
    """Measures a wait in the other side's time: wall time minus the loop's own lag."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.lag_at_start = process_loop.lag_so_far()

    def elapsed(self) -> float:
        lag = process_loop.lag_so_far() - self.lag_at_start
        return max(0.0, time.monotonic() - self.started - lag)

    def restart(self) -> None:
        self.started = time.monotonic()
        self.lag_at_start = process_loop.lag_so_far()


process_loop = ProcessLoop()
atexit.register(process_loop.close_clients)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=process_loop.reset_after_fork)
