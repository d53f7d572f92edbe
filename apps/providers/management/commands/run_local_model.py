import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.providers.local import LOCAL_MODEL_ALIAS, LocalModelMissing, local_model_path


class Command(BaseCommand):
    help = "Serve the bundled SmolLM2 model as an OpenAI-compatible endpoint (llama.cpp)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.LOCAL_MODEL_HOST)
        parser.add_argument("--port", type=int, default=settings.LOCAL_MODEL_PORT)
        parser.add_argument("--n-ctx", type=int, default=2048)

    def handle(self, *args, **options):
        try:
            model = local_model_path()
        except LocalModelMissing as error:
            raise CommandError(str(error)) from error
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError as error:
            raise CommandError(
                "llama-cpp-python[server] is not installed: run `uv sync --extra local`."
            ) from error
        self.stdout.write(f"Serving {model.name} on http://{options['host']}:{options['port']}/v1")
        argv = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            LOCAL_MODEL_ALIAS,
            "--host",
            options["host"],
            "--port",
            str(options["port"]),
            "--n_ctx",
            str(options["n_ctx"]),
        ]
        # llama_cpp.server reads HOST/PORT from the environment over its flags, and
        # honcho sets PORT for every process it starts.
        env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT")}
        os.execve(sys.executable, argv, env)  # noqa: S606 - this process becomes the server
