"""The Celery app. Periodic schedules are declared here, in one place."""

import os

from celery import Celery
from celery.signals import worker_init
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")

app = Celery("assistant")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # The database is the source of truth; this re-dispatches anything a lost
    # task or a dead worker left behind.
    "sweep-stuck-messages": {
        "task": "conversations.sweep_stuck_task",
        "schedule": settings.SWEEP_EVERY_SECONDS,
    },
}


@worker_init.connect
def _preload_sdks(**kwargs) -> None:
    """Import the platform and model SDKs as the worker starts, not in its first turn."""
    from apps.core.preload import sdks_preload

    sdks_preload()
