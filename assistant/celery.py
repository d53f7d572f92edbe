"""The Celery app. Periodic schedules are declared here, in one place."""

import os
from logging.config import dictConfig

from celery import Celery
from celery.signals import setup_logging, worker_init
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
# Django's system checks run in `migrate` (before every start) and in `manage.py check`;
# a worker restarted after a crash skips them and takes turns a little sooner.
os.environ.setdefault("CELERY_SKIP_CHECKS", "true")

app = Celery("assistant")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Each worker refreshes a heartbeat in Redis: /readyz knows a worker is alive without
# asking it (apps/core/health.py).
app.steps["consumer"].add("apps.core.health.WorkerHeartbeat")

app.conf.beat_schedule = {
    # The database is the source of truth; this re-dispatches anything a lost
    # task or a dead worker left behind.
    "sweep-stuck-messages": {
        "task": "conversations.sweep_stuck_task",
        "schedule": settings.SWEEP_EVERY_SECONDS,
        # Sent while no worker ran, it is dropped once the next one is due.
        "options": {"expires": settings.SWEEP_EVERY_SECONDS},
    },
    # Gray releases move on (or roll back) from the answers and feedback stored so far.
    "evaluate-releases": {
        "task": "routing.releases_evaluate_task",
        "schedule": settings.RELEASE_EVALUATE_EVERY_SECONDS,
    },
}


@worker_init.connect
def _preload_sdks(**kwargs) -> None:
    """Import the platform and model SDKs as the worker starts, not in its first turn."""
    from apps.core.preload import sdks_preload, start_up_objects_freeze

    sdks_preload()
    start_up_objects_freeze()


@worker_init.connect
def _serve_worker_metrics(**kwargs) -> None:
    """METRICS_WORKER_PORT: this worker's metrics on its own endpoint (apps/core/metrics.py)."""
    if settings.METRICS_WORKER_PORT:
        from apps.core.metrics import worker_endpoint_start

        worker_endpoint_start(
            port=settings.METRICS_WORKER_PORT, address=settings.METRICS_WORKER_ADDRESS
        )


if settings.LOG_FORMAT == "json":

    @setup_logging.connect
    def _log_as_configured(**kwargs) -> None:
        """JSON lines from workers and beat too: Celery keeps settings.LOGGING, not its own."""
        dictConfig(settings.LOGGING)
