"""Processes of the benchmark: started in their own process groups, stopped together
(also on Ctrl-C and SIGTERM), sampled for memory and CPU. Used by bench/run.py."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "bench" / "logs"
processes: list[subprocess.Popen] = []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: str, env: dict, log: str) -> subprocess.Popen:
    """Start a command in its own process group (so it and its children stop together)."""
    handle = open(LOGS / log, "w")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(  # noqa: S602 - our own commands and the Procfile's
        command,
        shell=True,
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    processes.append(process)
    return process


def stop_all() -> None:
    """SIGTERM every process group, wait up to 20 s in all, then SIGKILL what is left."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    for process in processes:  # a group may outlive its leader
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


def procfile_command(name: str, values: dict[str, str]) -> str:
    """The Procfile's line for `name`, with ${VAR:-default} expanded from `values`."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            command = line.split(":", 1)[1].strip()
            return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: values.get(m[1], m[2]), command)
    raise SystemExit(f"no `{name}:` line in the Procfile")


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args} exited ({process.returncode}); see bench/logs/")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def take_lock():
    """Only one bench at a time: a second one would drop the database under the first."""
    LOGS.mkdir(exist_ok=True)
    handle = open(LOGS / ".run.lock", "w")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit("another bench/run.py is running (bench/logs/.run.lock)") from None
    mine = {os.getpid(), *(parent.pid for parent in psutil.Process().parents())}
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if (
            process.info["pid"] not in mine
            and "bench/run.py" in cmdline
            and any("python" in part for part in cmdline[:1])
        ):
            raise SystemExit(f"another bench/run.py is running (pid {process.info['pid']})")
    return handle


class Sampler:
    """Peak RSS (summed over each process tree, sampled every 0.5 s) and CPU seconds."""

    def __init__(self, roots: list[subprocess.Popen]):
        self.roots = [psutil.Process(process.pid) for process in roots]
        self.peak_rss = 0
        self.running = True
        self.cpu_start = self._cpu()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _tree(self) -> list[psutil.Process]:
        found = []
        for root in self.roots:
            with contextlib.suppress(psutil.NoSuchProcess):
                found += [root, *root.children(recursive=True)]
        return found

    def _cpu(self) -> float:
        total = 0.0
        for process in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        return total

    def _run(self) -> None:
        while self.running:
            rss = 0
            for process in self._tree():
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss += process.memory_info().rss
            self.peak_rss = max(self.peak_rss, rss)
            time.sleep(0.5)

    def stop(self) -> dict:
        self.running = False
        self.thread.join()
        return {
            "peak_rss_mb": round(self.peak_rss / 2**20, 1),
            "cpu_seconds": round(self._cpu() - self.cpu_start, 1),
        }


def platform_env(*, database: str, redis_url: str, web_port: int) -> dict[str, str]:
    """The platform's environment on loopback: production settings (DEBUG off, as an
    operator runs it) with throwaway secrets, its own database and Redis."""
    env = {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "DEBUG": "false",
        "SECRET_KEY": "bench-secret-key-bench-secret-key-bench-secret-key-0123",
        "FIELD_ENCRYPTION_KEY": "3q2OkMlFf4Bh6xJ0w5r9wEw8nqJ8u0rXo1yC3f0mYkE=",
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
        "PORT": str(web_port),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("PYTEST_VERSION", "DJANGO_SETTINGS_MODULE", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    return env


def database_fresh(database: str, env: dict[str, str]) -> None:
    """Drop and re-create `database`, then migrate it."""
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q"]
    subprocess.run(  # noqa: S603
        [*psql, "-c", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"]
        + ["-c", f"CREATE DATABASE {database}"],
        check=True,
        capture_output=True,
    )
    python = str(ROOT / ".venv" / "bin" / "python")
    migrate = [python, "manage.py", "migrate", "--noinput", "-v0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True)  # noqa: S603
