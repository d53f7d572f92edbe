"""A small MCP server for the mcp skill's tests, built with the official SDK (`MCPServer`,
v1's `FastMCP`), served for real: over streamable HTTP on a loopback port
(`FakeMcpHttpServer`, uvicorn in a thread) or over stdio as a child process
(`python tests/fakes/mcp_server.py --stdio`, the command a skill instance names).

Tools: `add`, `echo`, `lookup_order` (an order desk), `secret_env` (reads an environment
variable: the stdio skill passes `env`), `picture` (text and an image), `fail` (a tool
error), `slow` (sleeps, for time limits), `stuck` (blocks; with FAKE_MCP_IGNORE_SIGTERM
the stdio child ignores SIGTERM too). Over stdio, the child writes its process id to
the file named by FAKE_MCP_PID_FILE, so a test can check that it was ended.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

# Run as a script (`python tests/fakes/mcp_server.py --stdio`): no Django, no project imports.
ORDERS = {
    "A-1001": "shipped on 3 May, arriving 6 May",
    "A-1002": "packed, leaving the warehouse today",
}
# The smallest valid PNG (one transparent pixel).
PIXEL_PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
    )
).decode()


def build_server():
    """A fresh server (the SDK's HTTP session manager runs once per server object)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ImageContent, TextContent

    server = MCPServer("fake-orders", log_level="WARNING")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two whole numbers."""
        return a + b

    @server.tool()
    def echo(text: str) -> str:
        """Answer with the same text."""
        return text

    @server.tool()
    def lookup_order(order_id: str) -> str:
        """Where an order is, by its number (e.g. A-1001)."""
        if order_id not in ORDERS:
            raise ToolError(f"no order {order_id}")
        return f"Order {order_id}: {ORDERS[order_id]}"

    @server.tool()
    def secret_env(name: str) -> str:
        """The value of an environment variable of the server process."""
        return os.environ.get(name, "<unset>")

    @server.tool()
    def picture() -> list:
        """A caption and a picture."""
        return [
            TextContent(type="text", text="A red dot:"),
            ImageContent(type="image", data=PIXEL_PNG, mime_type="image/png"),
        ]

    @server.tool()
    def fail(reason: str) -> str:
        """Always fails, with the reason given."""
        raise ToolError(f"refused: {reason}")

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleeps, then answers."""
        await asyncio.sleep(seconds)
        return "done"

    @server.tool()
    def stuck(seconds: float) -> str:
        """Blocks without looking up (with FAKE_MCP_IGNORE_SIGTERM, only SIGKILL ends it)."""
        time.sleep(seconds)
        return "unstuck"

    return server


MCP_TOKEN = "mcp-SECRET-token-5e6f"  # the bearer token tests give the fake (a secret to mask)


class FakeMcpHttpServer:
    """The fake MCP server over streamable HTTP at `url` (…/mcp) on 127.0.0.1.

    `token`, when set, is required as "Authorization: Bearer <token>" (else 401);
    `requests` keeps the headers of every request it saw.
    """

    def __init__(self, token: str = ""):
        self.token = token
        self.requests: list[dict[str, str]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def _app(self):
        app = build_server().streamable_http_app()
        fake = self

        async def guarded(scope, receive, send):
            if scope["type"] == "http":
                headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
                fake.requests.append(headers)
                if fake.token and headers.get("authorization") != f"Bearer {fake.token}":
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 401,
                            "headers": [(b"content-type", b"application/json")],
                        }
                    )
                    await send({"type": "http.response.body", "body": b'{"error":"no token"}'})
                    return
            await app(scope, receive, send)

        return guarded

    def start(self) -> FakeMcpHttpServer:
        import uvicorn

        config = uvicorn.Config(self._app(), log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake MCP server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()


def stdio_command() -> tuple[str, list[str]]:
    """The command and arguments that run this server over stdio."""
    return sys.executable, [str(Path(__file__).resolve()), "--stdio"]


if __name__ == "__main__":
    if "--stdio" in sys.argv:
        pid_file = os.environ.get("FAKE_MCP_PID_FILE")
        if pid_file:
            Path(pid_file).write_text(str(os.getpid()))
        if os.environ.get("FAKE_MCP_IGNORE_SIGTERM"):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        build_server().run("stdio")
