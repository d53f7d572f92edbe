"""A loopback HTTP server base for fakes of outside services."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Request:
    """One request as the fake saw it."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.query = parse_qs(urlsplit(path).query)

    def form_or_json(self) -> dict[str, Any]:
        """Telegram-style parameters: JSON body, or form fields whose values may be JSON."""
        content_type = self.headers.get("content-type", "")
        if not self.body:
            return {}
        if "application/json" in content_type:
            return json.loads(self.body)
        if "multipart/form-data" in content_type:
            return {}
        fields = {key: values[-1] for key, values in parse_qs(self.body.decode()).items()}
        decoded: dict[str, Any] = {}
        for key, value in fields.items():
            try:
                decoded[key] = json.loads(value)
            except ValueError:
                decoded[key] = value
        return decoded


class Response:
    def __init__(
        self,
        status: int = 200,
        body: Any = None,
        headers: dict[str, str] | None = None,
        stream: Callable[[Callable[[bytes], None]], None] | None = None,
    ):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.stream = stream


class LoopbackServer:
    """Serves `handle(request) -> Response` on 127.0.0.1 in a background thread."""

    def __init__(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                response = fake.handle(request)
                if response.stream is not None:
                    self.send_response(response.status)
                    for key, value in response.headers.items():
                        self.send_header(key, value)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()

                    def write(data: bytes) -> None:
                        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()

                    try:
                        response.stream(write)
                        self.wfile.write(b"0\r\n\r\n")
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                payload = response.body
                if not isinstance(payload, bytes):
                    payload = json.dumps(payload).encode()
                self.send_response(response.status)
                headers = {"Content-Type": "application/json", **response.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def handle(self, request: Request) -> Response:  # pragma: no cover - overridden
        raise NotImplementedError

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy and return it; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        time.sleep(interval)
