"""Enqueueing the pipeline's Celery tasks (always after commit)."""

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def turn_lock_key(conversation_id: int) -> str:
    """The Redis key a running turn holds (and keeps renewing) for its conversation."""
    return f"assistant:turn:{conversation_id}"


def dispatch_turn(conversation_id: int, countdown: float = 0) -> None:
    """Schedule a turn for the conversation once the current transaction commits."""
    from apps.conversations.tasks import respond_task

    transaction.on_commit(lambda: _enqueue(respond_task, conversation_id, countdown=countdown))


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

    transaction.on_commit(lambda: _enqueue(deliver_task, message_id, countdown=countdown))


def _enqueue(task, argument: int, countdown: float = 0) -> None:
    # The row is committed: if the broker is briefly unreachable, the sweeper
    # dispatches it later. The caller (a webhook) must still answer 2xx.
    try:
        task.apply_async(args=[argument], countdown=countdown or None)
    except Exception:  # noqa: BLE001 - any broker failure; the database is the record
        logger.exception("could not enqueue %s(%s); the sweeper will", task.name, argument)
