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
