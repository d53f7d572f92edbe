"""Load and what came of it: Telegram updates posted to a webhook at once or on an open-loop
schedule, and what the fakes saw (answers complete, duplicated, edits, first text shown).
Used by bench/run.py."""

from __future__ import annotations

import asyncio
import datetime
import json
import time
import urllib.request

import aiohttp

SECRET = "bench-webhook-secret-0123456789"  # noqa: S105 - the bench bot's webhook secret


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def get_json(url: str, *, method: str = "GET", timeout: float = 30) -> dict:
    request = urllib.request.Request(url, method=method)  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.load(response)


def build_update(uid: int) -> bytes:
    """A Telegram Update as Telegram sends it (python-telegram-bot's own serialisation,
    as tests/telegram_updates.py builds them): user u<id> writes "u<id>" in a private chat."""
    from telegram import Chat, Message, Update, User

    sender = User(id=uid, is_bot=False, first_name="U", last_name=str(uid))
    message = Message(
        message_id=1,
        date=datetime.datetime.now(datetime.UTC).replace(microsecond=0),
        chat=Chat(id=uid, type=Chat.PRIVATE, first_name="U"),
        from_user=sender,
        text=f"u{uid}",
    )
    return Update(update_id=uid, message=message).to_json().encode()


async def post_all(url: str, bodies: dict[int, bytes], *, rate: float | None, secret: bool):
    """Post each body once: all at once (rate None), or on an open-loop schedule (a post
    goes out at its time whatever happened to the earlier ones)."""
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Telegram-Bot-Api-Secret-Token"] = SECRET
    results: list[tuple[int, float, float, int]] = []  # uid, posted, latency, status
    lateness: list[float] = []  # how far behind its schedule each post went out
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(uid: int) -> None:
            posted = time.time()
            started = time.monotonic()
            try:
                async with session.post(url, data=bodies[uid], headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            results.append((uid, posted, time.monotonic() - started, status))

        if rate is None:
            await asyncio.gather(*(one(uid) for uid in bodies))
        else:
            begin = time.monotonic()
            tasks = []
            for index, uid in enumerate(bodies):
                due = begin + index / rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                lateness.append(time.monotonic() - due)
                tasks.append(asyncio.create_task(one(uid)))
            await asyncio.gather(*tasks)
    return results, lateness


def ack_summary(posts: list) -> dict:
    latencies = [latency for _uid, _when, latency, status in posts if status]
    statuses: dict[str, int] = {}
    for *_rest, status in posts:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "posts": len(posts),
        "ack_p50_ms": ms(percentile(latencies, 0.5)),
        "ack_p99_ms": ms(percentile(latencies, 0.99)),
        "ack_max_ms": ms(max(latencies) if latencies else None),
        "non_2xx": sum(n for status, n in statuses.items() if not status.startswith("2")),
        "http_5xx": sum(n for status, n in statuses.items() if status.startswith("5")),
        "failed_connections": statuses.get("0", 0),
        "statuses": statuses,
    }


def analyse(uids: list[int], posts: list, telegram: dict, model: dict, args) -> dict:
    """What the users saw, per chat: when the full answer showed, sends, edits, duplicates."""
    wanted = set(uids)
    full = {uid: answer_text(uid, args.chunks) for uid in uids}
    complete: dict[int, float] = {}
    first_shown: dict[int, float] = {}
    sends: dict[int, int] = {}
    edits: dict[int, int] = {}
    full_in: dict[int, set[int]] = {}  # chat -> messages that showed the full answer
    for when, method, chat_id, message_id, text in telegram["calls"]:
        if chat_id not in wanted:
            continue
        answering = bool(text) and text.startswith("answer to")
        if method == "sendMessage" and answering:
            sends[chat_id] = sends.get(chat_id, 0) + 1
        if method == "editMessageText":
            edits[chat_id] = edits.get(chat_id, 0) + 1
        if answering:
            first_shown.setdefault(chat_id, when)
        if text == full[chat_id]:
            complete[chat_id] = min(when, complete.get(chat_id, when))
            full_in.setdefault(chat_id, set()).add(message_id)
    posted = {uid: when for uid, when, _latency, _status in posts}
    done = [uid for uid in uids if uid in complete]
    overheads = [complete[uid] - posted[uid] - args.total for uid in done]
    visible = [
        first_shown[uid] - model["first_token"][f"u{uid}"]
        for uid in uids
        if uid in first_shown and f"u{uid}" in model["first_token"]
    ]
    duplicated = [uid for uid in uids if sends.get(uid, 0) > 1 or len(full_in.get(uid, ())) > 1]
    late = [model["late"][f"u{uid}"] for uid in uids if f"u{uid}" in model["late"]]
    drain = max(complete.values()) - min(posted.values()) if done else None
    return {
        "users": len(uids),
        "answered": len(done),
        "missing": len(uids) - len(done),
        "duplicated": len(duplicated),
        "drain_s": round(drain, 2) if drain is not None else None,
        "overhead_p50_ms": ms(percentile(overheads, 0.5)),
        "overhead_p95_ms": ms(percentile(overheads, 0.95)),
        "edits_per_answer": round(sum(edits.get(uid, 0) for uid in done) / len(done), 2)
        if done
        else None,
        "edits_refused_not_modified": telegram.get("not_modified", 0),
        "telegram_calls_abandoned": telegram.get("abandoned", {}),
        "first_text_after_first_token_p50_ms": ms(percentile(visible, 0.5)),
        "first_text_after_first_token_p95_ms": ms(percentile(visible, 0.95)),
        "model_requests": model["requests"],
        "model_peak_streams": model.get("peak_streams"),
        "model_fake_late_p95_ms": ms(percentile(late, 0.95)),
    }


def answer_text(uid: int, chunks: int) -> str:
    return " ".join([f"answer to u{uid}", *(f"w{number}" for number in range(1, chunks))])
