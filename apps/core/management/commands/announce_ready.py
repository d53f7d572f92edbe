"""`make run`'s banner: waits until the web server, a worker and the local model answer,
then prints where everything is, once, and stays quiet (honcho stops all processes when
one ends, so it waits for Ctrl-C)."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from apps.bots.choices import Platform
from apps.bots.models import Bot
from apps.core.first_admin import ADMIN_PASSWORD_FILE
from apps.providers.local import LOCAL_MODEL_ALIAS
from apps.providers.models import ModelProfile

WAIT_SECONDS = 600


class Command(BaseCommand):
    help = "Wait until the platform answers, then print its addresses (make run's banner)."

    def add_arguments(self, parser):
        parser.add_argument("--web-port", type=int, default=8000)
        parser.add_argument(
            "--once", action="store_true", help="Exit after printing (default: wait for Ctrl-C)."
        )

    def handle(self, *args, **options):
        base = f"http://127.0.0.1:{options['web_port']}"
        waiting = [
            (_("web server"), lambda: _answers(f"{base}/health/")),
            (_("worker"), _worker_answers),
        ]
        if ModelProfile.objects.filter(model=LOCAL_MODEL_ALIAS).exists():
            local = f"http://{settings.LOCAL_MODEL_HOST}:{settings.LOCAL_MODEL_PORT}/v1"
            waiting.append((_("local model"), lambda: _model_answers(local)))
        deadline = time.monotonic() + WAIT_SECONDS
        for name, ready in waiting:
            while not ready():
                if time.monotonic() > deadline:
                    self.stderr.write(_("Still waiting for the %(name)s.") % {"name": name})
                    deadline = time.monotonic() + WAIT_SECONDS
                time.sleep(0.5)
        self.stdout.write(self.style.SUCCESS(self.banner(base)))
        if not options["once"]:
            signal.pause()

    def banner(self, base: str) -> str:
        lines = [
            "",
            "=" * 64,
            "  " + _("The assistant platform is ready."),
            "",
            f"  {_('Start page'):<12} {base}/",
            f"  {_('Admin'):<12} {base}/admin/",
            f"  {_('Console'):<12} {base}/console/",
        ]
        for bot in Bot.objects.filter(platform=Platform.WEB, enabled=True).order_by("name"):
            lines.append(f"  {_('Web chat'):<12} {base}/chat/{bot.pk}/  ({bot.name})")
        lines.append("")
        lines.append("  " + _("Admin user: admin"))
        if ADMIN_PASSWORD_FILE.exists():
            lines.append(
                "  "
                + _("Its first password is in %(file)s (delete the file once you changed it).")
                % {"file": ADMIN_PASSWORD_FILE.name}
            )
        lines += ["  " + _("Ctrl-C stops everything."), "=" * 64, ""]
        return "\n".join(lines)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _model_answers(base_url: str) -> bool:
    """The local model answers a one-token completion (so the first real one is warm)."""
    body = {"model": LOCAL_MODEL_ALIAS, "messages": [{"role": "user", "content": "Hi"}]}
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{base_url}/chat/completions",
        data=json.dumps({**body, "max_tokens": 1}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _worker_answers() -> bool:
    from assistant.celery import app

    try:
        return bool(app.control.ping(timeout=1.0))
    except Exception:  # noqa: BLE001 - the broker may not be up yet either
        return False
