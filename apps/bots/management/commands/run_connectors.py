import signal
import threading

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from apps.bots.connectors.supervisor import Supervisor


class Command(BaseCommand):
    help = (
        "Keep persistent connections (Telegram long polling, Feishu long connection) for "
        "every enabled bot in persistent mode. Picks up changes in the admin; Ctrl-C or "
        "SIGTERM stops it cleanly."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reload-seconds",
            type=float,
            default=None,
            help="How often the bot list is re-read (default 3).",
        )

    def handle(self, *args, reload_seconds=None, **options):
        stop = threading.Event()

        def request_stop(signum, frame):
            stop.set()

        previous = {
            signum: signal.signal(signum, request_stop)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.stdout.write(_("Connectors running; Ctrl-C stops."))
            Supervisor(reload_seconds=reload_seconds).run(stop)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write(_("Connectors stopped."))
