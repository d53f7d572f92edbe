"""The one backoff rule for every retry: outgoing calls, deliveries, turns and connectors.

The retries themselves are scheduled in different ways (a Celery countdown, a connector
thread's wait, an await), so this module computes how long to wait, not how to wait.
"""

from __future__ import annotations

import random


def backoff_delay(
    *,
    attempt: int,
    base: float,
    cap: float,
    jitter: bool = True,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait before retry number `attempt` (1 for the first retry).

    Doubles from `base` up to `cap`; with `jitter` a random half to all of it, so many
    waiting callers do not come back at once. Never less than the `retry_after` the
    other side asked for.
    """
    delay = min(cap, base * 2 ** min(max(attempt - 1, 0), 32))
    if jitter:
        delay *= 0.5 + random.random() / 2  # noqa: S311 - spreading load, not a secret
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
