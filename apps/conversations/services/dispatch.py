"""Enqueueing the pipeline's Celery tasks (always after commit).

A task the broker cannot take (Redis restarting) is not lost: its rows are committed and
the sweeper dispatches them within seconds. Sooner still, this process keeps it and
enqueues it again as soon as the broker answers (`Undispatched`).
"""

import collections
import logging
import os
import threading
import time

from django.db import transaction

logger = logging.getLogger(__name__)

# How often a process tries again to enqueue what the broker refused, and for how long
# (after that, what is left is the sweeper's: it dispatches from the database anyway).
UNDISPATCHED_RETRY_SECONDS = 0.5
UNDISPATCHED_KEEP_SECONDS = 120.0


def turn_lock_key(conversation_id: int) -> str:
    """The Redis key a running turn holds (and keeps renewing) for its conversation."""
    return f"assistant:turn:{conversation_id}"


def dispatch_turn(conversation_id: int, countdown: float = 0) -> None:
    """Schedule a turn for the conversation once the current transaction commits."""
    from apps.conversations.tasks import respond_task

    transaction.on_commit(lambda: _enqueue(respond_task, [conversation_id], countdown=countdown))


INTERRUPT_CHANNEL = "assistant:turn-interrupt"


def dispatch_interrupt(conversation_id: int) -> None:
    """Tell the worker running this conversation's turn, if any, that the user wrote again
    (a Redis message every worker process listens to), once the current transaction commits.
    """
    transaction.on_commit(lambda: _publish_interrupt(conversation_id))


def _publish_interrupt(conversation_id: int) -> None:
    from apps.core.redis import get_redis

    try:
        get_redis().publish(INTERRUPT_CHANNEL, conversation_id)
    except Exception:  # noqa: BLE001 - then the running answer finishes, and the next one follows
        logger.warning("could not signal conversation %s's turn to stop", conversation_id)


def dispatch_delivery(message_id: int, countdown: float = 0) -> None:
    """Schedule delivery of a recorded answer once the current transaction commits."""
    from apps.conversations.tasks import deliver_task

    transaction.on_commit(lambda: _enqueue(deliver_task, [message_id], countdown=countdown))


def dispatch_sender_name(conversation_id: int, sender_id: str) -> None:
    """Look up the name of a sender the platform names by id only, after commit."""
    from apps.conversations.tasks import participant_name_task

    transaction.on_commit(lambda: _enqueue(participant_name_task, [conversation_id, sender_id]))


def _enqueue(task, arguments: list, countdown: float = 0) -> None:
    # The row is committed: if the broker is briefly unreachable, this process tries
    # again (and the sweeper dispatches it in any case). A webhook still answers 2xx.
    try:
        task.apply_async(args=arguments, countdown=countdown or None)
    except Exception as error:  # noqa: BLE001 - any broker failure; the database is the record
        logger.warning(
            "could not enqueue %s%s: %s; trying again when the broker answers",
            task.name,
            tuple(arguments),
            error,
        )
        undispatched.hold(task, arguments, countdown)


class Undispatched:
    """Tasks this process could not enqueue, enqueued again as soon as the broker answers.

    A thread of its own (started when something is held, ending when nothing is) tries the
    oldest every `UNDISPATCHED_RETRY_SECONDS`, and the rest in order once one goes
    through; a task held longer than `UNDISPATCHED_KEEP_SECONDS` is left to the sweeper.
    A countdown counts from when the task was first asked for. Running one twice is
    harmless: turns and deliveries check the database and take a lock.
    """

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Hold nothing (a forked child: the parent's held tasks and thread are not its own)."""
        self._held: collections.deque[tuple[float, object, list, float]] = collections.deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, task, arguments: list, countdown: float = 0) -> None:
        with self._lock:
            self._held.append((time.monotonic(), task, arguments, countdown))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="undispatched", daemon=True)
                self._thread.start()

    def __len__(self) -> int:
        return len(self._held)

    def _run(self) -> None:
        while True:
            time.sleep(UNDISPATCHED_RETRY_SECONDS)
            with self._lock:
                if not self._held:
                    self._thread = None
                    return
            self._send_held()

    def _send_held(self) -> None:
        """Enqueue the held tasks in order, until the broker refuses one."""
        sent = 0
        while self._held:
            held_at, task, arguments, countdown = self._held[0]
            waited = time.monotonic() - held_at
            if waited > UNDISPATCHED_KEEP_SECONDS:
                logger.warning(
                    "left %s%s to the sweeper", getattr(task, "name", task), tuple(arguments)
                )
            else:
                try:
                    task.apply_async(  # type: ignore[attr-defined]
                        args=arguments, countdown=max(0.0, countdown - waited) or None
                    )
                except Exception:  # noqa: BLE001 - still out of reach: next round
                    break
                sent += 1
            self._held.popleft()
        if sent:
            logger.warning("enqueued %d held tasks once the broker answered again", sent)


undispatched = Undispatched()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=undispatched.forget)
