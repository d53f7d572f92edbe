"""`make bench`: the real multi-process stack under load, side by side with a bare relay.

Starts, on loopback: two fakes (bench/fakes.py: a streaming OpenAI-compatible model and
the Telegram Bot API, one process each), the bare relay (bench/relay.py), and the
platform as an operator runs it: the Procfile's `web` and `worker` commands (read from
the Procfile at run time) and Celery beat, on a fresh PostgreSQL database and a
dedicated Redis database. Then, for the platform and for the relay in the same run:

- webhook acknowledgement latency at fixed open-loop rates (posts sent on a schedule
  whatever the answers), with non-2xx and 5xx counts and what was answered;
- bursts of N users writing at once: drain time (first post to the last complete answer
  on the fake Telegram), per-message overhead (answer complete - posted - model time),
  answers missing and duplicated, streaming edits per answer, first streamed text on
  Telegram after the model's first token, worker RSS and CPU;
- the largest burst is 1,000 conversations in flight on one worker process;
- the same backlog answered by one worker process and by two.

Every post is a new user (a new private chat) whose text is unique ("u<id>"); the fake
model answers "answer to u<id> w1 ... w12", so each answer is traced to its user.

Results: printed and in bench/last_run.json (not committed); full runs (or --record)
also replace the "Load" section of bench/RESULTS.md and write bench/RESULTS.json.
Nothing here is a test: it asserts nothing, it measures.

    uv run --no-sync python bench/run.py [--quick] [--rates 25:10,100:30] [--bursts 50,200]

Most options also read an environment variable (BENCH_RATES, BENCH_BURSTS, ...);
`make bench BENCH_ARGS="--quick"` passes BENCH_ARGS on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from load import SECRET, ack_summary, analyse, build_update, get_json, ms, percentile, post_all
from processes import (
    LOGS,
    Sampler,
    database_fresh,
    free_port,
    platform_env,
    processes,
    procfile_command,
    start,
    stop_all,
    take_lock,
    wait_ready,
)
from report import done_when, machine, report, write_results

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
DATABASE = "assistant_bench"
# The bench flushes this Redis database; keep it apart from tests running meanwhile.
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "12"))


class Interrupted(KeyboardInterrupt):
    """SIGTERM / SIGHUP: stop like Ctrl-C does, so every process group is stopped."""


def on_signal(signum, _frame) -> None:
    raise Interrupted(signal.Signals(signum).name)


class Bench:
    def __init__(self, args):
        self.args = args
        self.next_uid = 10_000_000
        self.results: dict = {"scenarios": [], "done_when": [], "skipped": []}
        self.workers: list[subprocess.Popen] = []
        # The whole run fits in --budget: waits are cut short, and scenarios that would
        # start too late are skipped (and listed), rather than overrunning.
        self.deadline = time.monotonic() + args.budget - 25  # 25 s to stop and report

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def uids(self, count: int) -> list[int]:
        first = self.next_uid
        self.next_uid += count
        return list(range(first, first + count))

    # Between and around scenarios ----------------------------------------------------

    def reset_fakes(self) -> None:
        get_json(f"{self.telegram_url}/reset", method="POST")
        get_json(f"{self.model_root}/reset", method="POST")

    def settle(self, timeout: float = 60) -> bool:
        """Wait until the previous scenario is over: no model stream in flight, the
        Celery queues empty and the fake Telegram quiet for 1.5 s."""
        import redis

        queues = redis.Redis.from_url(self.env["REDIS_URL"])
        deadline = time.monotonic() + timeout
        quiet_since, last_calls = time.monotonic(), -1
        while time.monotonic() < deadline:
            streams = get_json(f"{self.model_root}/progress")["streams"]
            calls = get_json(f"{self.telegram_url}/progress")["calls"]
            queued = sum(queues.llen(name) for name in ("llm", "default", "celery"))
            if calls != last_calls or streams or queued:
                quiet_since, last_calls = time.monotonic(), calls
            elif time.monotonic() - quiet_since >= 1.5:
                return True
            time.sleep(0.3)
        return False

    def wait_answered(self, uids: list[int], timeout: float) -> None:
        """Until every uid's full answer is shown on the fake Telegram, or the time-out."""
        wanted = set(uids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            complete = set(get_json(f"{self.telegram_url}/progress")["complete"])
            if wanted <= complete:
                break
            time.sleep(0.5)
        time.sleep(1.5)  # a late duplicate would show up now

    def collect(self) -> tuple[dict, dict]:
        return get_json(f"{self.telegram_url}/stats"), get_json(f"{self.model_root}/stats")

    def target(self, name: str) -> tuple[str, list[subprocess.Popen], bool]:
        if name == "platform":
            return self.platform_url, self.workers, True
        return self.relay_url, [self.relay], False

    # Scenarios ---------------------------------------------------------------------------

    def run_load(self, target: str, label: str, users: int, rate: float | None) -> dict | None:
        posting = users / rate if rate else 1.0
        if self.remaining() < posting + 15:
            self.results["skipped"].append({"scenario": label, "target": target})
            print(f"{label:>24} {target:>8}: skipped, out of --budget", flush=True)
            return None
        settled = self.settle(timeout=min(60, self.remaining() - posting - 15))
        self.reset_fakes()
        uids = self.uids(users)
        bodies = {uid: build_update(uid) for uid in uids}
        url, roots, secret = self.target(target)
        samplers = {"worker": Sampler(roots)}
        if target == "platform":
            samplers["web"] = Sampler([self.web])
        profilers = self.profile(f"{target}-{label}") if target == "platform" else []
        posts, lateness = asyncio.run(post_all(url, bodies, rate=rate, secret=secret))
        self.wait_answered(uids, max(5.0, min(self.args.timeout, self.remaining())))
        for profiler in profilers:
            profiler.send_signal(signal.SIGINT)
        for profiler in profilers:
            profiler.wait(timeout=60)
        telegram, model = self.collect()
        usage = {name: sampler.stop() for name, sampler in samplers.items()}
        result = {
            "scenario": label,
            "target": target,
            "rate": rate,
            "workers": len(self.workers) if target == "platform" else None,
            "settled_before": settled,
            **ack_summary(posts),
            "sender_late_p99_ms": ms(percentile(lateness, 0.99)),
            **analyse(uids, posts, telegram, model, self.args),
            "worker_peak_rss_mb": usage["worker"]["peak_rss_mb"],
            "worker_cpu_seconds": usage["worker"]["cpu_seconds"],
            "web_cpu_seconds": usage["web"]["cpu_seconds"] if "web" in usage else None,
        }
        self.results["scenarios"].append(result)
        print(summary_line(result), flush=True)
        return result

    def profile(self, name: str) -> list[subprocess.Popen]:
        """With --profile: py-spy on the first worker's and the web process's trees (raw
        stacks in logs/profile-<scenario>[-web].txt)."""
        if not self.args.profile:
            return []
        stem = f"profile-{re.sub(r'[^a-z0-9]+', '-', name.lower())}"
        spy = str(ROOT / ".venv" / "bin" / "py-spy")
        profilers = []
        for suffix, pid in (("", self.workers[0].pid), ("-web", self.web.pid)):
            profiler = subprocess.Popen(  # noqa: S603
                [spy, "record", "--subprocesses", "--nonblocking", "--gil", "-r", "100", "-f"]
                + ["raw", "-o", str(LOGS / f"{stem}{suffix}.txt"), "-p", str(pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            processes.append(profiler)
            profilers.append(profiler)
        return profilers

    # Set-up ----------------------------------------------------------------------------

    def setup(self) -> None:
        LOGS.mkdir(exist_ok=True)
        model_port, telegram_port, relay_port, web_port = (free_port() for _ in range(4))
        self.telegram_url = f"http://127.0.0.1:{telegram_port}"
        self.model_root = f"http://127.0.0.1:{model_port}"
        model_url = f"{self.model_root}/v1"
        redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
        self.env = platform_env(database=DATABASE, redis_url=redis_url, web_port=web_port)
        redis_cli = ["redis-cli", "-h", "127.0.0.1", "-n", str(REDIS_DB), "flushdb"]
        subprocess.run(redis_cli, check=True, capture_output=True)  # noqa: S603
        database_fresh(DATABASE, self.env)
        bot_id = subprocess.run(  # noqa: S603
            [PYTHON, "bench/setup_db.py", model_url, self.telegram_url, SECRET],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        args = self.args
        model = start(
            f"{PYTHON} bench/fakes.py model {model_port} {args.first_token} {args.total} "
            f"{args.chunks}",
            self.env,
            "fake-model.log",
        )
        telegram = start(
            f"{PYTHON} bench/fakes.py telegram {telegram_port} {args.chunks}",
            self.env,
            "fake-telegram.log",
        )
        self.relay = start(
            f"{PYTHON} bench/relay.py {relay_port} {model_url} {self.telegram_url}",
            self.env,
            "relay.log",
        )
        values = {"PORT": str(web_port)}
        self.web_command = procfile_command("web", values)
        self.worker_command = procfile_command("worker", values)
        self.web = start(self.web_command, self.env, "web.log")
        self.workers = [start(self.worker_command, self.env, "worker-1.log")]
        beat = start(
            f"celery -A assistant beat -l warning -s {LOGS / 'beat-schedule'}",
            self.env,
            "beat.log",
        )
        self.platform_url = f"http://127.0.0.1:{web_port}/api/webhooks/telegram/{bot_id}/"
        self.relay_url = f"http://127.0.0.1:{relay_port}/webhook"
        wait_ready(f"{self.model_root}/progress", model)
        wait_ready(f"{self.telegram_url}/progress", telegram)
        wait_ready(f"http://127.0.0.1:{relay_port}/health", self.relay)
        wait_ready(f"http://127.0.0.1:{web_port}/health/", self.web)
        if beat.poll() is not None:
            raise SystemExit("celery beat exited; see bench/logs/beat.log")
        # Warm up both (imports, pools, the worker's readiness): a few answered messages.
        for target in ("platform", "relay"):
            warm = self.run_load(target, "warm-up", 5, None)
            if warm is None or warm["missing"]:
                raise SystemExit(f"{target}: the warm-up went unanswered; see bench/logs/")
        self.results["scenarios"].clear()

    # The run ---------------------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        self.setup()
        if "rates" in args.only:
            for rate, seconds in args.rates:
                for target in ("platform", "relay"):
                    label = f"{rate:g}/s for {seconds:g} s"
                    self.run_load(target, label, int(rate * seconds), rate)
        if "bursts" in args.only:
            for users in args.bursts:
                for target in ("relay", "platform"):
                    self.run_load(target, f"burst {users}", users, None)
        if "workers" in args.only:
            backlog = args.backlog
            single = self.find(f"burst {backlog}", "platform")
            if single is None:
                single = self.run_load("platform", f"burst {backlog}", backlog, None)
            second = start(self.worker_command, self.env, "worker-2.log")
            self.workers.append(second)
            self.wait_worker(second)
            double = self.run_load("platform", f"burst {backlog}, 2 workers", backlog, None)
            if single and double and single["drain_s"] and double["drain_s"]:
                self.results["two_workers_speedup"] = round(
                    single["drain_s"] / double["drain_s"], 2
                )

    def wait_worker(self, worker: subprocess.Popen, timeout: float = 60) -> None:
        """Until the new worker process says it is ready (Celery logs "ready")."""
        log = LOGS / "worker-2.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and worker.poll() is None:
            if "ready" in log.read_text(errors="replace"):
                return
            time.sleep(0.5)
        time.sleep(2)  # without a readiness line (log level), give it a moment

    def find(self, scenario: str, target: str) -> dict | None:
        for row in self.results["scenarios"]:
            if row["scenario"] == scenario and row["target"] == target:
                return row
        return None


def summary_line(r: dict) -> str:
    return (
        f"{r['scenario']:>24} {r['target']:>8}: posts {r['posts']}, ack p50/p99 "
        f"{r['ack_p50_ms']}/{r['ack_p99_ms']} ms, non-2xx {r['non_2xx']}, answered "
        f"{r['answered']}/{r['users']} (dup {r['duplicated']}), drain {r['drain_s']} s, "
        f"overhead p50 {r['overhead_p50_ms']} ms, edits/answer {r['edits_per_answer']}, "
        f"first text p50 {r['first_text_after_first_token_p50_ms']} ms, worker "
        f"{r['worker_peak_rss_mb']} MB {r['worker_cpu_seconds']} CPU s"
    )


# Command line ------------------------------------------------------------------------


def rates_option(value: str) -> list[tuple[float, float]]:
    """ "25:10,100:30" -> [(25, 10), (100, 30)]: posts per second and for how long."""
    pairs = []
    for item in filter(None, value.split(",")):
        rate, seconds = item.split(":")
        pairs.append((float(rate), float(seconds)))
    return pairs


def counts_option(value: str) -> list[int]:
    return [int(item) for item in value.split(",") if item]


def parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small loads for a quick look (rates 25:3,100:3,300:1; bursts 20,50; backlog 50); "
        "does not touch bench/RESULTS.md unless --record",
    )
    options = [
        ("--rates", rates_option, "BENCH_RATES", "rate:seconds,... (25:10,100:30,300:5)"),
        ("--bursts", counts_option, "BENCH_BURSTS", "users,... (50,200,500,1000)"),
        ("--backlog", int, "BENCH_BACKLOG", "users for one worker vs two (500)"),
        ("--first-token", float, "BENCH_FIRST_TOKEN", "seconds to the model's first token (0.3)"),
        ("--total", float, "BENCH_TOTAL", "seconds to the model's last chunk (2.0)"),
        ("--chunks", int, "BENCH_CHUNKS", "content chunks per answer (13)"),
        ("--timeout", float, "BENCH_TIMEOUT", "seconds before an answer counts as missing (150)"),
        ("--only", str, "BENCH_ONLY", "scenarios to run (rates,bursts,workers)"),
        ("--budget", float, "BENCH_BUDGET", "seconds the whole run may take (570)"),
    ]
    for flag, kind, variable, explanation in options:
        parser.add_argument(flag, type=kind, default=env(variable), help=explanation)
    parser.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the Load section of bench/RESULTS.md (default: yes, unless --quick)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the first worker and the web process (raw stacks in bench/logs/)",
    )
    args = parser.parse_args(argv)
    for flag, kind, _variable, _explanation in options:  # values from the environment
        name = flag.removeprefix("--").replace("-", "_")
        if isinstance(getattr(args, name), str) and kind is not str:
            setattr(args, name, kind(getattr(args, name)))
    if args.quick:
        args.rates = args.rates if args.rates is not None else [(25, 3), (100, 3), (300, 1)]
        args.bursts = args.bursts or [20, 50]
        args.backlog = args.backlog or 50
    args.rates = args.rates if args.rates is not None else [(25, 10), (100, 30), (300, 5)]
    args.bursts = args.bursts or [50, 200, 500, 1000]
    args.backlog = args.backlog or 500
    args.first_token = 0.3 if args.first_token is None else args.first_token
    args.total = 2.0 if args.total is None else args.total
    args.chunks = args.chunks or 13
    args.timeout = args.timeout or 150
    args.only = args.only or "rates,bursts,workers"
    args.budget = args.budget or 570
    if args.record is None:
        args.record = not args.quick
    return args


def main() -> None:
    argv = sys.argv[1:]
    args = parse_args(argv)
    lock = take_lock()  # noqa: F841 - held until exit
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    command = (
        "make bench" if os.environ.get("MAKELEVEL") else "uv run --no-sync python bench/run.py"
    )
    if argv:
        command += (
            f" BENCH_ARGS={shlex.quote(shlex.join(argv))}"
            if os.environ.get("MAKELEVEL")
            else " " + shlex.join(argv)
        )
    bench = Bench(args)
    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.UTC)
    interrupted = None
    try:
        bench.run()
    except KeyboardInterrupt as stop:
        interrupted = str(stop) or "SIGINT"
        print(f"interrupted ({interrupted}); stopping the stack", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_all()
    bench.results["meta"] = {
        "date": started.isoformat(timespec="seconds"),
        "duration_s": (datetime.datetime.now(datetime.UTC) - started).total_seconds(),
        "interrupted": interrupted,
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "command": command,
        "web": getattr(bench, "web_command", None),
        "worker": getattr(bench, "worker_command", None),
        "model": f"first token {args.first_token} s, last chunk {args.total} s, "
        f"{args.chunks} content chunks evenly spaced, usage chunk, [DONE]",
        "model_total": args.total,
        "backlog": args.backlog,
        "options": {key: value for key, value in vars(args).items()},
    }
    bench.results["done_when"] = done_when(bench.results, args)
    write_results(bench.results, record=args.record and not interrupted)
    print()
    print(report(bench.results))
    if interrupted:
        sys.exit(130)


if __name__ == "__main__":
    main()
