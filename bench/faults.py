"""`make faults`: no answer lost or repeated while things break, on the real stack.

Starts on loopback what `make bench` starts (bench/run.py): the fakes of the model and of
the Telegram Bot API (bench/fakes.py), the Procfile's `web` and `worker`, Celery beat
(the sweeper), on a fresh PostgreSQL database, but with a Redis server of its own (so it
can be restarted). Then, for each fault, new users write at a steady rate (one message
each, "u<id>") while the fault is applied in a loop, and every chat is checked:

- `kill`: the worker process is killed with SIGKILL every few seconds, mid-answer, and
  started again at once (as a supervisor would);
- `redis`: the Redis server (broker, locks, caches; no persistence) is killed and started
  again after a few seconds, repeatedly;
- `telegram`: bursts of 429 ("retry after 1") and of 500 from the Bot API on sends and edits;
- `model`: short outages of the model, all 429 then all 500 (no fallback profile);
- `duplicates`: 30 % of the updates are delivered twice (as Telegram does after a
  time-out).

A webhook answered with anything but 2xx is posted again after a second, up to five
times, as Telegram does. Counted per user: answered exactly once (one chat message shows
the full answer, no second answer sent), more than once, or never (within the time-out);
for `kill` and `redis`, the time from each fault to the last answer it delayed.

    uv run --no-sync python bench/faults.py [--messages 1000] [--rate 20] [--only kill,redis]

Results: printed, in bench/faults.json, and (unless --no-record) the "Faults" section of
bench/RESULTS.md. It asserts nothing: it counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
from load import SECRET, answer_text, build_update, get_json, percentile
from processes import (
    LOGS,
    database_fresh,
    free_port,
    platform_env,
    procfile_command,
    start,
    stop_all,
    take_lock,
    wait_ready,
)
from report import machine, write_section

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
DATABASE = "assistant_faults"
FAULTS = ("kill", "redis", "telegram", "model", "duplicates")
CHUNKS = 13
FIRST_TOKEN, TOTAL = 0.3, 2.0


class Stack:
    """The platform, its fakes and a private Redis, with the means to break them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.redis_port = free_port()
        self.redis = self._start_redis()
        model_port, telegram_port, web_port = (free_port() for _ in range(3))
        self.telegram_url = f"http://127.0.0.1:{telegram_port}"
        self.model_root = f"http://127.0.0.1:{model_port}"
        redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.env = platform_env(database=DATABASE, redis_url=redis_url, web_port=web_port)
        database_fresh(DATABASE, self.env)
        bot_id = subprocess.run(  # noqa: S603
            [PYTHON, "bench/setup_db.py", f"{self.model_root}/v1", self.telegram_url, SECRET],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        model = start(
            f"{PYTHON} bench/fakes.py model {model_port} {FIRST_TOKEN} {TOTAL} {CHUNKS}",
            self.env,
            "faults-model.log",
        )
        telegram = start(
            f"{PYTHON} bench/fakes.py telegram {telegram_port} {CHUNKS}",
            self.env,
            "faults-telegram.log",
        )
        values = {"PORT": str(web_port)}
        self.worker_command = procfile_command("worker", values)
        self.web = start(procfile_command("web", values), self.env, "faults-web.log")
        self.workers = [
            start(self.worker_command, self.env, f"faults-worker-{index + 1}.log")
            for index in range(args.workers)
        ]
        self.workers_started = len(self.workers)
        start(
            f"celery -A assistant beat -l warning -s {LOGS / 'faults-beat-schedule'}",
            self.env,
            "faults-beat.log",
        )
        self.url = f"http://127.0.0.1:{web_port}/api/webhooks/telegram/{bot_id}/"
        wait_ready(f"{self.model_root}/progress", model)
        wait_ready(f"{self.telegram_url}/progress", telegram)
        wait_ready(f"http://127.0.0.1:{web_port}/health/", self.web)

    def _start_redis(self) -> subprocess.Popen:
        redis = start(
            f"redis-server --port {self.redis_port} --bind 127.0.0.1 --save '' "
            "--appendonly no --protected-mode no",
            {**os.environ},
            "faults-redis.log",
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ping = subprocess.run(  # noqa: S603
                ["redis-cli", "-p", str(self.redis_port), "ping"],  # noqa: S607
                capture_output=True,
                text=True,
            )
            if ping.stdout.strip() == "PONG":
                return redis
            time.sleep(0.1)
        raise SystemExit("the private redis-server did not start; see bench/logs/")

    def kill_worker(self) -> None:
        """SIGKILL a worker (no warm shutdown; the oldest, so each is killed in turn) and
        start another at once."""
        victim = self.workers.pop(0)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        self.workers_started += 1
        self.workers.append(
            start(self.worker_command, self.env, f"faults-worker-{self.workers_started}.log")
        )

    def revive_workers(self) -> int:
        """Start again any worker that exited on its own, as a supervisor would (systemd's
        `Restart=always`, compose's `restart: unless-stopped`); how many did."""
        revived = 0
        for index, worker in enumerate(self.workers):
            if worker.poll() is None:
                continue
            self.workers_started += 1
            self.workers[index] = start(
                self.worker_command, self.env, f"faults-worker-{self.workers_started}.log"
            )
            revived += 1
        return revived

    def stop_redis(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.redis.pid, signal.SIGKILL)
        self.redis.wait()

    def start_redis(self) -> None:
        self.redis = self._start_redis()

    def inject(self, fake: str, status: int, how: str) -> None:
        root = self.telegram_url if fake == "telegram" else self.model_root
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{root}/faults?status={status}&{how}", method="POST"
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def complete(self) -> set[int]:
        return set(get_json(f"{self.telegram_url}/progress")["complete"])


async def post(session: aiohttp.ClientSession, url: str, body: bytes, statuses: list[int]) -> float:
    """Post one update like Telegram: again after a second on anything but 2xx (5 tries)."""
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
    posted = time.time()
    for _attempt in range(5):
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        statuses.append(status)
        if 200 <= status < 300:
            break
        await asyncio.sleep(1)
    return posted


async def run_fault(stack: Stack, fault: str, uids: list[int], args) -> dict:
    """Post every uid's message at `args.rate` while `fault` is applied; then count."""
    bodies = [(uid, build_update(uid)) for uid in uids]
    if fault == "duplicates":  # a third of them again, a little later, as Telegram retries
        again = random.Random(7).sample(bodies, k=int(len(bodies) * 0.3))
        for offset, item in enumerate(again):
            bodies.insert(min(len(bodies), uids.index(item[0]) + 5 + offset % 7), item)
    statuses: list[int] = []
    posted: dict[int, float] = {}
    events: list[float] = []  # when each kill / Redis stop happened
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    exits = 0  # workers that exited on their own (a crash), started again

    async def supervise() -> None:
        nonlocal exits
        while True:
            exits += await loop.run_in_executor(None, stack.revive_workers)
            await asyncio.sleep(0.5)

    supervisor = asyncio.create_task(supervise())

    async def apply() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.every)
                return  # posting is over
            if fault == "kill":
                events.append(time.time())
                await loop.run_in_executor(None, stack.kill_worker)
            elif fault == "redis":
                events.append(time.time())
                await loop.run_in_executor(None, stack.stop_redis)
                await asyncio.sleep(args.redis_down)
                await loop.run_in_executor(None, stack.start_redis)
            elif fault == "telegram":  # flood control and errors on the next calls
                status = 429 if len(events) % 2 == 0 else 500
                events.append(time.time())
                await loop.run_in_executor(None, stack.inject, fault, status, f"count={args.burst}")
            elif fault == "model":  # a short outage: every call fails for a while
                status = 429 if len(events) % 2 == 0 else 500
                events.append(time.time())
                await loop.run_in_executor(
                    None, stack.inject, fault, status, f"seconds={args.outage:g}"
                )

    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        applier = asyncio.create_task(apply())
        begin = time.monotonic()
        tasks = []
        for index, (uid, body) in enumerate(bodies):
            await asyncio.sleep(max(0.0, begin + index / args.rate - time.monotonic()))
            tasks.append(asyncio.create_task(post(session, stack.url, body, statuses)))
            tasks[-1].add_done_callback(lambda task, uid=uid: posted.setdefault(uid, task.result()))
        await asyncio.gather(*tasks)
        stop.set()
        await applier
    if fault == "redis" and stack.redis.poll() is not None:
        stack.start_redis()
    deadline = time.monotonic() + args.timeout
    wanted = set(uids)
    while time.monotonic() < deadline and not wanted <= stack.complete():
        await asyncio.sleep(1)
    await asyncio.sleep(args.grace)  # a late duplicate would show now
    supervisor.cancel()
    return {**count(stack, fault, uids, posted, statuses, events), "worker_exits": exits}


def count(stack, fault, uids, posted, statuses, events) -> dict:
    calls = get_json(f"{stack.telegram_url}/stats")["calls"]
    wanted = set(uids)
    complete_at: dict[int, float] = {}
    answer_messages: dict[int, set[int]] = {}  # chat -> messages that showed answer text
    sends: dict[int, int] = {}
    for when, method, chat_id, message_id, text in calls:
        if chat_id not in wanted or not text or not text.startswith("answer to"):
            continue
        answer_messages.setdefault(chat_id, set()).add(message_id)
        if method == "sendMessage":
            sends[chat_id] = sends.get(chat_id, 0) + 1
        if text == answer_text(chat_id, CHUNKS):
            complete_at.setdefault(chat_id, when)
    once = [u for u in uids if u in complete_at and len(answer_messages[u]) == 1]
    more = [u for u in uids if len(answer_messages.get(u, ())) > 1 or sends.get(u, 0) > 1]
    never = [u for u in uids if u not in complete_at]
    recoveries = []
    for at in events if fault in ("kill", "redis") else []:
        delayed = [
            complete_at.get(u, float("inf")) - at
            for u in uids
            if posted.get(u, float("inf")) < at and complete_at.get(u, float("inf")) > at
        ]
        recoveries.append(max(delayed) if delayed else 0.0)
    trail: dict[int, list] = {}  # what the chats that got more than one answer saw
    for when, method, chat_id, message_id, text in calls:
        if chat_id in more[:3]:
            trail.setdefault(chat_id, []).append(
                [round(when - posted.get(chat_id, when), 2), method, message_id, (text or "")[:40]]
            )
    # For `kill`: the kill nearest to each repeated answer's first message reaching Telegram,
    # in ms after it (negative: the kill was ordered just before Telegram got the request).
    kill_gaps_ms = []
    for chat_id in more if fault == "kill" else []:
        first = min((c[0] for c in calls if c[2] == chat_id and c[1] == "sendMessage"), default=0)
        if first and events:
            nearest = min(events, key=lambda at: abs(at - first))
            kill_gaps_ms.append(round((nearest - first) * 1000, 1))
    non_2xx = [s for s in statuses if not 200 <= s < 300]
    return {
        "fault": fault,
        "messages": len(uids),
        "posts": len(statuses),
        "faults_applied": len(events),
        "non_2xx": len(non_2xx),
        "http_5xx": sum(1 for s in non_2xx if s >= 500),
        "answered_once": len(once),
        "answered_more_than_once": len(more),
        "never_answered": len(never),
        "never_sample": never[:5],
        "more_than_once_sample": trail,
        "more_than_once_kill_gaps_ms": sorted(kill_gaps_ms),
        "recovery_max_s": round(max(recoveries), 1) if recoveries else None,
        "recovery_p50_s": round(percentile(recoveries, 0.5), 1) if recoveries else None,
    }


def _processes(count: int) -> str:
    return "one process" if count == 1 else f"{count} processes"


def report(results: dict) -> str:
    meta = results["meta"]
    lines = [
        "## Faults: nothing lost, nothing twice (`make faults`)",
        "",
        f"- **Date:** {meta['date']} ({meta['duration_s']:.0f} s); **command:** "
        f"`{meta['command']}`",
        f"- **Machine:** {meta['machine']['cores']} cores, Python {meta['machine']['python']};"
        f" load average before {meta['load_average_before']}, after "
        f"{meta['load_average_after']}.",
        f"- **Stack:** `{meta['worker']}` ({_processes(meta.get('workers', 1))}), the "
        "Procfile's web, Celery beat, "
        "PostgreSQL, a private Redis (no persistence); fake model (first token 0.3 s, done "
        "at 2.0 s) and fake Telegram. Each message is a new user; a non-2xx webhook answer "
        "is posted again after 1 s (5 tries), as Telegram retries.",
        f"- **Faults:** every {meta['every']:g} s: `kill` SIGKILLs a worker mid-answer and "
        f"starts another; `redis` kills Redis for {meta['redis_down']:g} s; `telegram` makes "
        f"the next {meta['burst']} sends or edits fail, `model` every call for "
        f"{meta['outage']:g} s, 429 and 500 in turn; "
        "`duplicates` posts 30 % of the updates twice. A worker that exits on its own "
        "is started again, as a supervisor would (`workers crashed` counts them).",
        "",
        "| fault | messages | faults applied | posts | non-2xx (5xx) | answered once | "
        "more than once | never | recovery max / p50 | workers crashed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["faults"]:
        recovery = (
            f"{r['recovery_max_s']} / {r['recovery_p50_s']} s"
            if r["recovery_max_s"] is not None
            else "-"
        )
        lines.append(
            f"| {r['fault']} | {r['messages']} | {r['faults_applied']} | {r['posts']} | "
            f"{r['non_2xx']} ({r['http_5xx']}) | {r['answered_once']} | "
            f"{r['answered_more_than_once']} | {r['never_answered']} | {recovery} | "
            f"{r.get('worker_exits', 0)} |"
        )
    lost = sum(r["never_answered"] for r in results["faults"])
    twice = sum(r["answered_more_than_once"] for r in results["faults"])
    kill = next((r for r in results["faults"] if r["fault"] == "kill"), None)
    lines += [
        "",
        f"In all: {lost} never answered, {twice} answered more than once"
        + (
            f"; after `kill -9` the last delayed answer came {kill['recovery_max_s']} s later."
            if kill and kill["recovery_max_s"] is not None
            else "."
        ),
        "Logs: bench/logs/faults-*.log; raw figures: bench/faults.json.",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="per fault (1000)")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second (20)")
    parser.add_argument("--only", default=",".join(FAULTS), help=",".join(FAULTS))
    parser.add_argument("--every", type=float, default=10.0, help="seconds between faults")
    parser.add_argument("--redis-down", type=float, default=4.0, help="seconds Redis is down")
    parser.add_argument("--burst", type=int, default=40, help="Telegram calls failed per burst")
    parser.add_argument("--outage", type=float, default=3.0, help="seconds a model outage lasts")
    parser.add_argument("--timeout", type=float, default=180.0, help="wait for answers (s)")
    parser.add_argument("--grace", type=float, default=5.0, help="then wait for duplicates")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes (1); `kill` kills one of them"
    )
    parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=True)
    return parser.parse_args(argv)


def main() -> None:
    argv = sys.argv[1:]
    args = parse_args(argv)
    lock = take_lock()  # noqa: F841 - one bench or faults run at a time
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    results: dict = {"faults": []}
    stack = None
    try:
        stack = Stack(args)
        next_uid = 10_000_000
        # Warm-up: imports, pools, the worker's readiness.
        warm = {**vars(args), "rate": 5.0, "every": 3600.0, "grace": 0.0, "timeout": 60.0}
        asyncio.run(run_fault(stack, "none", [1, 2, 3], argparse.Namespace(**warm)))
        for fault in args.only.split(","):
            uids = list(range(next_uid, next_uid + args.messages))
            next_uid += args.messages
            result = asyncio.run(run_fault(stack, fault, uids, args))
            print(json.dumps(result), flush=True)
            results["faults"].append(result)
    except KeyboardInterrupt:
        print("interrupted; stopping the stack", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_all()
    if os.environ.get("MAKELEVEL"):
        command = "make faults" + (f" FAULTS_ARGS={shlex.quote(shlex.join(argv))}" if argv else "")
    else:
        command = "uv run python bench/faults.py" + (" " + shlex.join(argv) if argv else "")
    results["meta"] = {
        "date": started.isoformat(timespec="seconds"),
        "duration_s": (datetime.datetime.now(datetime.UTC) - started).total_seconds(),
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "command": command,
        "worker": stack.worker_command if stack else None,
        "workers": args.workers,
        "every": args.every,
        "redis_down": args.redis_down,
        "burst": args.burst,
        "outage": args.outage,
    }
    (ROOT / "bench" / "faults.json").write_text(json.dumps(results, indent=2) + "\n")
    if results["faults"]:
        print(report(results))
        if args.record:
            write_section("faults", report(results))


if __name__ == "__main__":
    main()
