"""The one backoff rule (apps/core/retry.py)."""

from __future__ import annotations

from apps.core.retry import backoff_delay


def test_the_delay_doubles_up_to_the_cap():
    delays = [backoff_delay(attempt=n, base=0.5, cap=5.0, jitter=False) for n in range(1, 7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_jitter_spreads_between_half_and_all_of_the_delay():
    delays = {backoff_delay(attempt=3, base=1.0, cap=60.0) for _ in range(200)}
    assert all(2.0 <= delay <= 4.0 for delay in delays)
    assert len(delays) > 1


def test_what_the_other_side_asked_for_is_the_least():
    assert backoff_delay(attempt=1, base=1.0, cap=60.0, retry_after=30.0) == 30.0
    assert backoff_delay(attempt=1000, base=1.0, cap=60.0, jitter=False) == 60.0
