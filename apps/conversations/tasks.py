"""Celery tasks: thin wrappers that take ids and call one service."""

import contextlib
import logging

from celery import shared_task
from celery.signals import task_received, worker_shutting_down
from django.conf import settings
from redis.exceptions import LockError

from apps.conversations import services
from apps.conversations.engine import turn_engine
from apps.core.aio import process_loop
from apps.core.liveness import liveness
from apps.core.redis import get_redis

logger = logging.getLogger(__name__)


@shared_task(name="conversations.respond_task")
def respond_task(conversation_id: int) -> None:
    """Answer what is pending in a conversation (queue "llm").

    The turn runs on this process's turn engine; the task returns as soon as the
    engine has taken it (the database, not the broker, remembers unfinished work).
    """
    turn_engine.submit(conversation_id)


@task_received.connect
def _note_conversation_taken(request=None, **kwargs) -> None:
    """A turn's task reached this worker (prefetched or about to run): noted under this
    process's id, so if the process dies before the turn ends, the sweeper answers the
    conversation within seconds (apps.core.liveness) instead of after time-outs."""
    if request is None or request.name != respond_task.name:
        return
    conversation_id = (request.kwargs or {}).get("conversation_id")
    if conversation_id is None and request.args:
        conversation_id = request.args[0]
    if conversation_id is None:
        return
    # The consumer's thread, which takes every task in, never waits on Redis for it.
    liveness.took(int(conversation_id))


@shared_task(name="conversations.deliver_task")
def deliver_task(message_id: int) -> None:
    """Send an answer that is recorded but not yet delivered."""
    services.message_deliver(message_id=message_id)


@shared_task(name="conversations.participant_name_task")
def participant_name_task(conversation_id: int, sender_id: str) -> None:
    """Learn the name of a sender the platform's messages name by id only (queue "default")."""
    services.participant_name_learn(conversation_id=conversation_id, sender_id=sender_id)


SWEEP_LOCK_KEY = "assistant:sweeping"
SWEEP_LOCK_SECONDS = 10  # a sweep takes milliseconds; a killed one blocks the next for this


@shared_task(name="conversations.sweep_stuck_task")
def sweep_stuck_task() -> dict[str, int]:
    """Periodic: re-dispatch messages stuck in received/processing/answered.

    Runs every few seconds, so a run that found nothing logs at DEBUG only (Celery's
    own lines about it too: apps.core.log_filters); one that re-dispatched work warns,
    since a task was lost or a worker died. One sweep at a time, across processes: the
    sweeps beat sent while no worker ran (expired unless sent within one period) must
    not each give the same work again, side by side.
    """
    sweeping = get_redis().lock(SWEEP_LOCK_KEY, timeout=SWEEP_LOCK_SECONDS, blocking=False)
    if not sweeping.acquire():
        logger.debug("another sweep is under way")
        return {"turns": 0, "deliveries": 0}
    try:
        swept = services.messages_sweep()
    finally:
        with contextlib.suppress(LockError):  # it outlived its lock: the next one sweeps
            sweeping.release()
    if any(swept.values()):
        logger.warning(
            "sweeper re-dispatched stuck work: %d conversation(s) to answer, "
            "%d answer(s) to deliver",
            swept["turns"],
            swept["deliveries"],
        )
    else:
        logger.debug("sweeper found nothing stuck")
    return swept


@worker_shutting_down.connect
def _finish_running_turns(**kwargs) -> None:
    """A warm shutdown lets the turns in flight finish (the sweeper covers a cold one)."""
    process_loop.run(turn_engine.settle(timeout=settings.WORKER_SHUTDOWN_GRACE_SECONDS))
