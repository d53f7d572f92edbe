"""`make run` stopped with Ctrl-C: honcho stops every process and make reports no error."""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import time

import pytest
from django.conf import settings

RUN_SCRIPT = settings.BASE_DIR / "scripts" / "run.sh"


def _read_until(fd: int, marker: bytes, seen: bytearray, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{marker!r} not seen; output so far:\n{seen.decode()}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal closed: everything ended
                break
            if not chunk:
                break
            seen.extend(chunk)


def test_ctrl_c_stops_make_run_cleanly(tmp_path):
    for tool in ("make", "bash", "uv"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    # The real run script, with a Procfile of two idle processes instead of the platform.
    (tmp_path / "Procfile").write_text("first: sleep 300\nsecond: sleep 300\n")
    (tmp_path / "Makefile").write_text(f"run:\n\t@bash {RUN_SCRIPT}\n\t@echo run-finished\n")
    environment = {**os.environ, "UV_PROJECT": str(settings.BASE_DIR), "PORT": "18765"}

    pid, terminal = pty.fork()
    if pid == 0:  # the child: make in a terminal, as a developer runs it
        os.chdir(tmp_path)
        os.execvpe("make", ["make", "run"], environment)  # noqa: S606, S607
    seen = bytearray()
    status = None
    try:
        _read_until(terminal, b"second.1 started", seen)
        _read_until(terminal, b"first.1 started", seen)
        # Ctrl-C: the terminal sends SIGINT to its foreground process group.
        os.write(terminal, b"\x03")
        _read_until(terminal, b"run-finished", seen)
        _, status = os.waitpid(pid, 0)
    finally:
        if status is None:  # the test failed early: end make and what it started
            os.killpg(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        os.close(terminal)
    output = seen.decode()

    assert "SIGINT received" in output  # honcho got the Ctrl-C and stopped the processes
    assert "SIGKILL" not in output
    assert "make: ***" not in output
    assert os.waitstatus_to_exitcode(status) == 0
