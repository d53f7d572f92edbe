"""A Redis server of a test's own, on a free port, which the test may kill and start again
(the shared one of the other tests must stay up)."""

from __future__ import annotations

import socket
import subprocess

from apps.core.redis import get_async_redis, get_redis
from tests.fakes.server import wait_for
from tests.local_model import free_port


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 (fixed arguments)
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],  # noqa: S607
            stdout=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10)

    def _answers(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class RedisOutOfReach:
    """REDIS_URL (locks, liveness, provider health, counters; not the broker's or the
    channel layer's connections, made at start) names a port nothing listens on."""

    def __init__(self, settings) -> None:
        self.settings, self.reachable = settings, settings.REDIS_URL
        self._point_at(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there

    def restore(self) -> None:
        self._point_at(self.reachable)

    def _point_at(self, url: str) -> None:
        self.settings.REDIS_URL = url
        get_redis.cache_clear()
        get_async_redis.cache_clear()
