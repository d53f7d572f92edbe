"""Celery tasks: thin wrappers that take ids and call one service."""

from celery import shared_task

from apps.conversations import services


@shared_task(name="conversations.respond_task", bind=True, max_retries=None)
def respond_task(self, conversation_id: int) -> int:
    """Answer what is pending in a conversation (queue "llm")."""
    try:
        return services.conversation_respond(conversation_id=conversation_id)
    except services.TurnBusy:
        # The running turn answers what arrived meanwhile; this retry only
        # covers the moment between its last look and releasing the lock.
        raise self.retry(countdown=2, max_retries=300) from None


@shared_task(name="conversations.deliver_task")
def deliver_task(message_id: int) -> None:
    """Send an answer that is recorded but not yet delivered."""
    services.message_deliver(message_id=message_id)


@shared_task(name="conversations.sweep_stuck_task")
def sweep_stuck_task() -> dict[str, int]:
    """Periodic: re-dispatch messages stuck in received/processing/answered."""
    return services.messages_sweep()
