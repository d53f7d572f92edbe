"""Pipeline benchmark: N Telegram webhook posts -> answers through a real worker.

Not part of the test suite (pytest's testpaths is tests/); it asserts nothing
about speed. Run it explicitly, with your own Redis database:

    REDIS_URL=redis://127.0.0.1:6379/13 uv run pytest bench/bench_pipeline.py -q -s \
        -p no:cacheprovider

Knobs (environment): BENCH_MESSAGES (default 200), BENCH_FIRST_TOKEN_DELAY (seconds the
fake model waits before its first token, default 0.2), BENCH_CHUNK_DELAY (between chunks,
default 0.02). What is measured:

- ingest: the webhook view's response time (verify, parse, store, enqueue), per post;
- end to end: from the inbound row's received_at to the answer's delivered_at;
- throughput: answers delivered per second, first post to last delivery;
- merging: a burst into one conversation, and how many model turns answered it.

Results are printed and written to bench/last_run.json.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Message
from tests.fakes.server import wait_for
from tests.telegram_updates import post_update, private_text_update

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "200"))
FIRST_TOKEN_DELAY = float(os.environ.get("BENCH_FIRST_TOKEN_DELAY", "0.2"))
CHUNK_DELAY = float(os.environ.get("BENCH_CHUNK_DELAY", "0.02"))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.50) * 1000, 1),
        "p95_ms": round(percentile(values, 0.95) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1),
    }


def delivered_answers() -> int:
    return Message.objects.filter(
        direction=Direction.OUT, author=Author.ASSISTANT, status=MessageStatus.DELIVERED
    ).count()


def test_pipeline_benchmark(client, worker, telegram_bot, fake_telegram, fake_openai):
    fake_openai.reply = "A benchmark answer of a few words, streamed in small chunks."
    fake_openai.first_token_delay = FIRST_TOKEN_DELAY
    fake_openai.chunk_delay = CHUNK_DELAY

    # Many conversations: one message from each of MESSAGES users.
    ingest: list[float] = []
    started = time.monotonic()
    for number in range(MESSAGES):
        update = private_text_update(f"question {number}", user_id=100_000 + number)
        before = time.perf_counter()
        response = post_update(client, telegram_bot, update)
        ingest.append(time.perf_counter() - before)
        assert response.status_code == 200
    posted = time.monotonic() - started
    wait_for(lambda: delivered_answers() >= MESSAGES, timeout=600, interval=0.2)
    elapsed = time.monotonic() - started
    end_to_end = [
        (answer.delivered_at - answer.reply_to.received_at).total_seconds()
        for answer in Message.objects.filter(
            direction=Direction.OUT, author=Author.ASSISTANT, status=MessageStatus.DELIVERED
        ).select_related("reply_to")
    ]

    # One conversation, a burst of messages while its first turn runs: merged turns.
    burst = 10
    turns_before = len(fake_openai.requests)
    answers_before = delivered_answers()
    for number in range(burst):
        post_update(client, telegram_bot, private_text_update(f"burst {number}", user_id=42))
    wait_for(
        lambda: (
            Message.objects.filter(
                direction=Direction.IN, sender_id="42", status=MessageStatus.ANSWERED
            ).count()
            == burst
        ),
        timeout=120,
        interval=0.1,
    )
    burst_turns = len(fake_openai.requests) - turns_before
    wait_for(lambda: delivered_answers() - answers_before >= burst_turns, timeout=60)
    burst_answers = delivered_answers() - answers_before

    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "database": "sqlite (pytest-django test database)",
        "worker": {"pool": "threads", "concurrency": 8},
        "fake_model": {
            "first_token_delay_s": FIRST_TOKEN_DELAY,
            "chunk_delay_s": CHUNK_DELAY,
            "chunks": len(fake_openai.reply) // fake_openai.chunk_size + 1,
        },
        "messages": MESSAGES,
        "ingest": summary(ingest),
        "ingest_per_second": round(MESSAGES / posted, 1),
        "end_to_end": summary(end_to_end),
        "answers_per_second": round(MESSAGES / elapsed, 2),
        "max_model_streams_at_once": fake_openai.max_in_flight,
        "burst": {"messages": burst, "model_turns": burst_turns, "answers": burst_answers},
    }
    text = json.dumps(results, indent=2)
    print(text)
    Path(__file__).with_name("last_run.json").write_text(text + "\n")
