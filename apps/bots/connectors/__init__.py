"""Persistent connections to chat platforms, for bots without a public webhook URL.

`manage.py run_connectors` runs the supervisor, which keeps one connector thread per
enabled bot whose connection_mode is "persistent". A connector is any class with

    __init__(self, bot)                        # a Bot row
    run(self, stop: threading.Event) -> None   # blocks until `stop` is set; raises on
                                               # fatal errors (the supervisor restarts it)

and optionally `heartbeat` (time.monotonic() of its last sign of life; a connector whose
heartbeat goes stale is abandoned and restarted) and `status` (a short text shown in
the admin). Each platform's connector lives in its package (`platforms/<name>/connector.py`)
and is named by its `PlatformSpec.connector`.
"""

from __future__ import annotations

import threading
from typing import Protocol


class Connector(Protocol):
    """One bot's persistent connection to its platform."""

    def __init__(self, bot) -> None: ...

    def run(self, stop: threading.Event) -> None:
        """Receive until `stop` is set; raise on a fatal error."""
