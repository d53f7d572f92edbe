"""`manage.py healthcheck`: /readyz's JSON on stdout, exit status 1 when not ready.

For Docker's HEALTHCHECK and other probes that run a command rather than an HTTP call.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand
from django.utils.translation import gettext_lazy as _

from apps.core.health import CHECKS, liveness, readiness


class Command(BaseCommand):
    # Lazy, so `manage.py help` speaks the language active when it prints.
    help = _(  # type: ignore[assignment]
        "Check the database, Redis, the broker, the workers and the connectors; print the "
        "result as JSON and exit with status 1 when any of them fails."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="append",
            choices=list(CHECKS),
            help=_("Run only this check (repeatable). Default: all of them."),
        )
        parser.add_argument(
            "--live",
            action="store_true",
            help=_("Liveness only (what /healthz answers): no checks."),
        )

    def handle(self, *args, **options):
        if options["live"]:
            self.stdout.write(json.dumps(liveness()))
            return
        ready, answer = readiness(only=options["check"])
        self.stdout.write(json.dumps(answer))
        if not ready:
            sys.exit(1)
