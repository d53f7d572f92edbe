"""Enqueueing the pipeline's Celery tasks (always after commit)."""

from django.db import transaction


def dispatch_turn(conversation_id: int) -> None:
    """Schedule a turn for the conversation once the current transaction commits."""
    from apps.conversations.tasks import respond_task

    transaction.on_commit(lambda: respond_task.delay(conversation_id))


def dispatch_delivery(message_id: int, countdown: float = 0) -> None:
    """Schedule delivery of a recorded answer once the current transaction commits."""
    from apps.conversations.tasks import deliver_task

    transaction.on_commit(lambda: deliver_task.apply_async(args=[message_id], countdown=countdown))
