"""The bundled local model (llama.cpp serving SmolLM2-135M) as `make run` starts it, for
the tests that talk to it (marked `local_model`)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.server import wait_for


def skip_without_llama_cpp() -> None:
    """Outside CI, a checkout synced without the `local` extra skips these tests."""
    if importlib.util.find_spec("llama_cpp") is None and not os.environ.get("CI"):
        pytest.skip(
            "llama-cpp-python is not installed (uv sync --extra local)", allow_module_level=True
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


READY = "Local model ready (warm)"


@pytest.fixture(scope="session")
def local_model_url(tmp_path_factory):
    """`manage.py run_local_model` as `make run` starts it, used once it says it is warm;
    one server for the session (loading the model takes a while on two cores)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("local-model") / "server.log"
    log = log_path.open("wb")
    manage = Path(__file__).resolve().parents[1] / "manage.py"
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, str(manage), "run_local_model", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: READY in log_path.read_text() or process.poll() is not None, timeout=200)
        assert process.poll() is None, log_path.read_text()[-2000:]
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    output = log_path.read_text()
    # Stopped cleanly, and quiet: no llama.cpp loader chatter unless asked for.
    assert process.returncode == 0, output[-2000:]
    assert "llama_model_loader" not in output and len(output.splitlines()) < 20, output[-2000:]
