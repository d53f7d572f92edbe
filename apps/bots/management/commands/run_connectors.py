import signal
import threading

from django.core.management.base import BaseCommand

from apps.bots.connectors.supervisor import Supervisor


class Command(BaseCommand):
    help = (
        "Keep persistent connections (Telegram long polling, Feishu long connection) for "
        "every enabled bot in persistent mode. Picks up changes in the admin; Ctrl-C stops."
    )

    def handle(self, *args, **options):
        stop = threading.Event()

        def request_stop(signum, frame):
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        self.stdout.write("Connectors running; Ctrl-C stops.")
        Supervisor().run(stop)
        self.stdout.write("Connectors stopped.")
