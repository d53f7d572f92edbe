"""Celery tasks of routing: thin wrappers that call one service."""

import logging

from celery import shared_task

from apps.routing.services import releases_evaluate

logger = logging.getLogger(__name__)


@shared_task(name="routing.releases_evaluate_task")
def releases_evaluate_task() -> dict[str, int]:
    """Periodic: advance, complete or roll back the running gray releases."""
    outcome = releases_evaluate()
    if outcome:
        logger.info("releases evaluated: %s", outcome)
    return outcome
