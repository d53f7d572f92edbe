"""A loopback fake of an outside ticket system's HTTP API, for the http_action skill.

POST /api/tickets creates a ticket and answers 201 {"ticket_id": "T-1001", ...}. Tests
queue other answers first (`fail_next(503, ...)`) to see retries and failures; every
request is recorded with its headers and raw body (to check the HMAC signature).
"""

from __future__ import annotations

import json
import time

from tests.fakes.server import LoopbackServer, Request, Response


class FakeTicketSystem(LoopbackServer):
    def __init__(self):
        super().__init__()
        self.requests: list[Request] = []
        self.queued: list[Response] = []
        self.next_number = 1001
        self.delay = 0.0  # seconds before answering: a slow system, for timeouts

    def fail_next(self, status: int, body=None, headers: dict[str, str] | None = None) -> None:
        """Answer the next request with this status instead of creating a ticket."""
        with self.lock:
            self.queued.append(Response(status, body or {"error": "unavailable"}, headers))

    def handle(self, request: Request) -> Response:
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.requests.append(request)
            if self.queued:
                return self.queued.pop(0)
            if request.method != "POST" or not request.path.startswith("/api/tickets"):
                return Response(404, {"error": "not found"})
            try:
                fields = json.loads(request.body or b"{}")
            except ValueError:
                return Response(400, {"error": "not JSON"})
            if not fields.get("title"):
                return Response(422, {"error": "a ticket needs a title"})
            ticket_id = f"T-{self.next_number}"
            self.next_number += 1
            return Response(201, {"ticket_id": ticket_id, "title": fields["title"]})
