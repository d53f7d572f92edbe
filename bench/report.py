"""The benchmark's report: machine facts, issue 8's "Done when" verdicts, the Markdown
section of bench/RESULTS.md, bench/RESULTS.json and bench/last_run.json. Used by run.py."""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def done_when(results: dict, args) -> list[dict]:
    """Issue 8's "Done when" lines that this bench measures, each with its verdict."""
    rows = results["scenarios"]

    def row(scenario: str, target: str = "platform") -> dict | None:
        return next((r for r in rows if r["scenario"] == scenario and r["target"] == target), None)

    def exactly_once(r: dict) -> bool:
        return r["answered"] == r["users"] and not r["duplicated"]

    verdicts = []

    def verdict(line: str, ok: bool | None, measured: str) -> None:
        verdicts.append({"line": line, "ok": ok, "measured": measured})

    held = row("100/s for 30 s")
    verdict(
        "webhook ack p99 <= 50 ms at 100 posts/s held 30 s",
        held["ack_p99_ms"] is not None and held["ack_p99_ms"] <= 50 if held else None,
        f"p99 {held['ack_p99_ms']} ms" if held else "not run (needs --rates with 100:30)",
    )
    rated = [r for r in rows if r["target"] == "platform" and r["rate"]]
    if rated:
        top = max(r["rate"] for r in rated)
        errors = sum(r["http_5xx"] + r["failed_connections"] for r in rated)
        verdict(
            "no 5xx at any rate up to 300 posts/s",
            errors == 0 if top >= 300 else None,
            f"{errors} 5xx or failed connections at rates up to {top:g}/s",
        )
    else:
        verdict("no 5xx at any rate up to 300 posts/s", None, "not run")
    platform_row, relay_row = row("burst 500"), row("burst 500", "relay")
    if platform_row and relay_row and platform_row["drain_s"] and relay_row["drain_s"]:
        ratio = platform_row["drain_s"] / relay_row["drain_s"]
        extra = (platform_row["overhead_p50_ms"] or 0) - (relay_row["overhead_p50_ms"] or 0)
        verdict(
            "500 users at once: every message answered exactly once, drain <= 2x the "
            "relay's, overhead p50 <= the relay's + 0.5 s",
            exactly_once(platform_row) and ratio <= 2 and extra <= 500,
            f"{platform_row['answered']}/500 answered, {platform_row['duplicated']} "
            f"duplicated; drain {ratio:.2f}x; overhead p50 {extra:+.0f} ms over the relay's",
        )
    else:
        verdict("500 users at once (drain, overhead, exactly once)", None, "not run")
    thousand = row("burst 1000")
    if thousand and thousand["workers"] == 1:
        verdict(
            "1,000 conversations in flight on one worker process: all answered exactly "
            "once, worker RSS <= 1 GB",
            exactly_once(thousand) and thousand["worker_peak_rss_mb"] <= 1024,
            f"{thousand['answered']}/1000 answered, {thousand['duplicated']} duplicated, "
            f"up to {thousand['model_peak_streams']} model streams at once, RSS "
            f"{thousand['worker_peak_rss_mb']} MB",
        )
    else:
        verdict("1,000 conversations in flight on one worker process", None, "not run")
    fifty = row("burst 50")
    if fifty and fifty["first_text_after_first_token_p95_ms"] is not None:
        verdict(
            "at 50 users, first streamed text visible on Telegram <= 1.5 s after the "
            "model's first token (judged on p95)",
            fifty["first_text_after_first_token_p95_ms"] <= 1500,
            f"p50 {fifty['first_text_after_first_token_p50_ms']} ms, p95 "
            f"{fifty['first_text_after_first_token_p95_ms']} ms",
        )
    else:
        verdict("at 50 users, first streamed text <= 1.5 s after the first token", None, "not run")
    speedup = results.get("two_workers_speedup")
    verdict(
        "two worker processes answer a backlog measurably faster than one (judged: >= 1.1x)",
        speedup >= 1.1 if speedup else None,
        f"{speedup}x as fast ({args.backlog} users)" if speedup else "not run",
    )
    return verdicts


def label(row: dict) -> str:
    return row["scenario"] + ("" if row["settled_before"] else " \\*")


def report(results: dict) -> str:
    rows = results["scenarios"]
    meta = results["meta"]
    m = meta["machine"]
    lines = [
        "## Load: the platform beside a bare relay (`make bench`)",
        "",
        f"- **Date:** {meta['date']} ({meta['duration_s']:.0f} s); **command:** "
        f"`{meta['command']}`" + (" (**interrupted**)" if meta.get("interrupted") else ""),
        f"- **Machine:** {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GiB, Linux "
        f"{m['kernel']}, Python {m['python']}; load average before "
        f"{meta['load_average_before']}, after {meta['load_average_after']}. Everything "
        "below (PostgreSQL, Redis, the fakes, the load generator, the stack, the relay) "
        "shares these cores.",
        f"- **Platform:** `{meta['web']}`; `{meta['worker']}` (one process, a second for "
        "the last row); Celery beat; PostgreSQL; Redis; DEBUG off.",
        f"- **Fakes:** model: {meta['model']}; Telegram Bot API (refuses no-op edits like "
        "Telegram). Streaming edits on (the platform's default).",
        "- **Relay:** bench/relay.py: aiohttp + one AsyncOpenAI client + one sendMessage "
        "per answer through one HTTP session; no storage, no streaming edits.",
        "- **Overhead** = full answer visible on the fake Telegram - webhook posted - the "
        f"model's {meta['model_total']} s. **First text** = first answer text visible on "
        "the fake Telegram - the model's first token (the relay shows its answer once, "
        "when it is complete).",
        "",
        "### Webhook acknowledgement at fixed rates (open loop)",
        "",
        "| rate | target | posts | ack p50 | ack p99 | max | non-2xx | 5xx | answered | "
        "missing | dup | worker CPU s | web CPU s | sender late p99 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if r["rate"]:
            lines.append(
                f"| {label(r)} | {r['target']} | {r['posts']} | {r['ack_p50_ms']} ms | "
                f"{r['ack_p99_ms']} ms | {r['ack_max_ms']} ms | {r['non_2xx']} | "
                f"{r['http_5xx']} | {r['answered']} | {r['missing']} | {r['duplicated']} | "
                f"{r['worker_cpu_seconds']} | {r['web_cpu_seconds'] or '-'} | "
                f"{r['sender_late_p99_ms']} ms |"
            )
    lines += [
        "",
        "### Bursts: N users write at once",
        "",
        "| users | target | answered | missing | dup | drain | overhead p50 / p95 | "
        "edits/answer | first text p50 / p95 | ack p99 | 5xx | worker RSS peak | worker CPU s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if not r["rate"]:
            lines.append(
                f"| {label(r).removeprefix('burst ')} | {r['target']} | {r['answered']} | "
                f"{r['missing']} | {r['duplicated']} | {r['drain_s']} s | "
                f"{r['overhead_p50_ms']} / {r['overhead_p95_ms']} ms | {r['edits_per_answer']} | "
                f"{r['first_text_after_first_token_p50_ms']} / "
                f"{r['first_text_after_first_token_p95_ms']} ms | {r['ack_p99_ms']} ms | "
                f"{r['http_5xx']} | {r['worker_peak_rss_mb']} MB | {r['worker_cpu_seconds']} |"
            )
    lines += ["", "### Platform / relay", ""]
    by = {(r["scenario"], r["target"]): r for r in rows}
    for (scenario, target), r in by.items():
        relay = by.get((scenario, "relay"))
        if target != "platform" or relay is None:
            continue
        parts = []
        if r["drain_s"] and relay["drain_s"]:
            parts.append(f"drain {r['drain_s'] / relay['drain_s']:.2f}x")
        if r["overhead_p50_ms"] is not None and relay["overhead_p50_ms"] is not None:
            parts.append(f"overhead p50 {r['overhead_p50_ms'] - relay['overhead_p50_ms']:+.0f} ms")
        if r["ack_p99_ms"] and relay["ack_p99_ms"]:
            parts.append(f"ack p99 {r['ack_p99_ms'] / relay['ack_p99_ms']:.1f}x")
        if r["worker_cpu_seconds"] and relay["worker_cpu_seconds"]:
            parts.append(f"CPU {r['worker_cpu_seconds'] / relay['worker_cpu_seconds']:.1f}x")
        if r["answered"] and relay["answered"] and relay["worker_cpu_seconds"]:
            mine = r["worker_cpu_seconds"] / r["answered"] * 1000
            theirs = relay["worker_cpu_seconds"] / relay["answered"] * 1000
            parts.append(f"CPU per answer {mine:.0f} ms vs {theirs:.0f} ms")
        if r["worker_peak_rss_mb"] and relay["worker_peak_rss_mb"]:
            parts.append(f"RSS {r['worker_peak_rss_mb'] / relay['worker_peak_rss_mb']:.1f}x")
        lines.append(f"- {scenario}: " + ", ".join(parts))
    if results.get("two_workers_speedup"):
        lines.append(
            f"- Two worker processes drain a {meta['backlog']}-user backlog "
            f"{results['two_workers_speedup']}x as fast as one."
        )
    notes = []
    if any(not r["settled_before"] for r in rows):
        notes.append(
            "\\* started before the previous scenario had drained (its leftovers were "
            "still being answered)."
        )
    for item in results.get("skipped", []):
        notes.append(f"Skipped, out of the time budget: {item['scenario']} ({item['target']}).")
    abandoned: dict[str, int] = {}
    for r in rows:
        for method, count in (r.get("telegram_calls_abandoned") or {}).items():
            abandoned[method] = abandoned.get(method, 0) + count
    if abandoned:
        counts = ", ".join(f"{count} {method}" for method, count in sorted(abandoned.items()))
        notes.append(
            f"Bot API calls abandoned by their client mid-request ({counts}): the fake "
            "Telegram saw the connection drop (a client time-out or a cancelled call)."
        )
    late = [r["model_fake_late_p95_ms"] for r in rows if r["model_fake_late_p95_ms"] is not None]
    if late:
        notes.append(
            f"The fake model kept its schedule within {max(late)} ms (worst p95 of a "
            'scenario), so it was not the bottleneck. "Sender late" is how far the load '
            "generator fell behind its open-loop schedule."
        )
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    lines += ["", '### Issue 8\'s "Done when", as measured by this run', ""]
    for item in results["done_when"]:
        mark = {True: "met", False: "**not met**", None: "not measured"}[item["ok"]]
        lines.append(f"- {mark}: {item['line']}: {item['measured']}")
    lines += [
        "",
        "Worker RSS is summed over the worker's process tree, sampled every 0.5 s; CPU is "
        "the user + system seconds the tree used during the scenario (the relay's row: "
        "the relay process). Raw figures: bench/RESULTS.json; logs of the last run: "
        "bench/logs/.",
    ]
    return "\n".join(lines) + "\n"


def write_results(results: dict, *, record: bool) -> None:
    raw = json.dumps(results, indent=2) + "\n"
    (ROOT / "bench" / "last_run.json").write_text(raw)  # every run; not committed
    if not record:
        return
    (ROOT / "bench" / "RESULTS.json").write_text(raw)  # the run RESULTS.md reports
    write_section("load", report(results))


def write_section(name: str, markdown: str) -> None:
    """Replace (or append) bench/RESULTS.md's section between its `bench:<name>` markers."""
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    start_mark, end_mark = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    section = f"{start_mark}\n{markdown}{end_mark}"
    if start_mark in text:
        pattern = re.escape(start_mark) + r".*?" + re.escape(end_mark)
        text = re.sub(pattern, lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
