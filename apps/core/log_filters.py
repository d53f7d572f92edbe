"""Logging filters (configured in settings.LOGGING)."""

from __future__ import annotations

import logging
from collections.abc import Iterable


class RoutineTasksAtDebug(logging.Filter):
    """Celery's per-run INFO lines about routine periodic tasks, demoted to DEBUG.

    Beat's "Sending due task", the worker's "Task … received" and "… succeeded" name
    the task in the record's arguments; for the tasks listed here the line is logged
    at DEBUG (so dropped unless the logger shows DEBUG). The task itself says when a
    run did something worth reading.
    """

    def __init__(self, tasks: Iterable[str] = ()):
        super().__init__()
        self.tasks = frozenset(tasks)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not self._names_routine_task(record.args):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    def _names_routine_task(self, args) -> bool:
        if isinstance(args, dict):  # worker: {"name": task name, "id": …}
            return args.get("name") in self.tasks
        if isinstance(args, tuple):  # beat: (entry name, task name)
            return any(isinstance(arg, str) and arg in self.tasks for arg in args)
        return False
