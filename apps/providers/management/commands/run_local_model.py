import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from apps.providers.local import LOCAL_MODEL_ALIAS, LocalModelMissing, local_model_path

START_SECONDS = 180  # loading the model on a busy 2-core machine


class Command(BaseCommand):
    help = (
        "Serve the bundled SmolLM2 model as an OpenAI-compatible endpoint (llama.cpp); "
        "says it is ready only once the model has answered a first request."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.LOCAL_MODEL_HOST)
        parser.add_argument("--port", type=int, default=settings.LOCAL_MODEL_PORT)
        parser.add_argument("--n-ctx", type=int, default=2048)
        parser.add_argument(
            "--verbose",
            action="store_true",
            default=os.environ.get("LOCAL_MODEL_VERBOSE", "").lower() in ("1", "true", "yes"),
            help="Show llama.cpp's loader and request logs (LOCAL_MODEL_VERBOSE=true).",
        )

    def handle(self, *args, **options):
        try:
            model = local_model_path()
        except LocalModelMissing as error:
            raise CommandError(str(error)) from error
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError as error:
            raise CommandError(
                _("llama-cpp-python[server] is not installed: run `uv sync --extra local`.")
            ) from error
        host, port = options["host"], options["port"]
        argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(model)]
        argv += ["--model_alias", LOCAL_MODEL_ALIAS, "--host", host, "--port", str(port)]
        argv += ["--n_ctx", str(options["n_ctx"]), "--verbose", str(options["verbose"])]
        quiet = not options["verbose"]
        # llama_cpp.server reads HOST/PORT from the environment over its flags, and
        # honcho sets PORT for every process it starts.
        env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT")}
        self.stdout.write(_("Loading %(model)s (llama.cpp)…") % {"model": model.name})
        # Quiet: its output goes to a temporary file, shown only if it fails to start.
        log = tempfile.TemporaryFile() if quiet else None  # noqa: SIM115 - lives with the server
        server = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            argv, env=env, stdout=log, stderr=subprocess.STDOUT if quiet else None
        )
        stop = _forward_signals(server)
        base_url = f"http://{host}:{port}/v1"
        try:
            _warm_up(base_url, server, stop)
        except CommandError:
            server.terminate()
            server.wait(timeout=30)
            if log is not None:
                log.seek(0)
                self.stderr.write(log.read().decode(errors="replace")[-3000:])
            raise
        if not stop:
            self.stdout.write(
                self.style.SUCCESS(_("Local model ready (warm) at %(url)s") % {"url": base_url})
            )
        code = server.wait()
        sys.exit(0 if stop else code)


def _forward_signals(server: subprocess.Popen) -> list[int]:
    """SIGTERM/SIGINT go on to the server; the list records that we were asked to stop."""
    stop: list[int] = []

    def forward(signum, frame):
        stop.append(signum)
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return stop


def _warm_up(base_url: str, server: subprocess.Popen, stop: list[int]) -> None:
    """Wait until the server answers a one-token completion: the first real one is then fast."""
    body = json.dumps(
        {
            "model": LOCAL_MODEL_ALIAS,
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 1,
        }
    ).encode()
    deadline = time.monotonic() + START_SECONDS
    while not stop:
        if server.poll() is not None:
            raise CommandError(f"the model server exited with status {server.returncode}")
        request = urllib.request.Request(  # noqa: S310 - our own loopback server
            f"{base_url}/chat/completions",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120):  # noqa: S310
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise CommandError(f"the model server did not answer in {START_SECONDS}s") from None
            time.sleep(0.5)
