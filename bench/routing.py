"""How long a routing decision takes with 1,000 enabled rules (the goal: p99 <= 1 ms).

    uv run python bench/routing.py [--rules 1000] [--decisions 10000] [--seed 7]

Builds random enabled rules in memory (every condition kind; every rule has one condition
few messages meet and up to two more; a tenth are for some bots only; so most decisions
walk the whole list), compiles them as a worker process does (apps.routing.rules), then times
`apps.routing.engine.decide` on random messages: building what the rules look at (case
folding, commands, language on demand) and the walk. No database: compiling happens once
per process after a change, deciding happens on every turn. Prints p50, p99 and max.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
os.environ.setdefault("DEBUG", "true")

import django  # noqa: E402

django.setup()

from apps.bots.models import Bot  # noqa: E402
from apps.providers.models import ModelProfile  # noqa: E402
from apps.routing.engine import decide  # noqa: E402
from apps.routing.models import RoutingRule  # noqa: E402
from apps.routing.rules import RoutingInput, ruleset_compile  # noqa: E402

WORDS = [
    "order", "refund", "invoice", "price", "delivery", "vip", "account", "password",
    "订单", "退款", "发票", "价格", "快递", "会员", "账户", "密码", "客服", "投诉",
]  # fmt: skip
PATTERNS = [r"\b\d{6,}\b", r"(?i)order\s*#?\d+", r"(a+)+$", r"[\p{Han}]{4,}", r"^hi\b"]
BOTS = [f"00000000-0000-0000-0000-{n:012d}" for n in range(20)]


def random_rule(rng: random.Random, pk: int) -> tuple[RoutingRule, list[str]]:
    rule = RoutingRule(pk=pk, name=f"rule {pk}", priority=rng.randint(1, 1000), action="profile")
    # One condition that few messages meet, so most decisions walk every rule (the worst
    # case), then up to two more of any kind.
    selective = rng.choice(["chat", "user", "keywords", "pattern", "command"])
    for index in range(rng.randint(1, 3)):
        kind = selective if index == 0 else rng.choice(
            ["platform", "chat_type", "chat", "user", "keywords", "pattern", "command", "attach",
             "language", "time"]
        )  # fmt: skip
        if kind == "platform":
            rule.platform = rng.choice(["telegram", "feishu", "web"])
        elif kind == "chat_type":
            rule.chat_type = rng.choice(["private", "group"])
        elif kind == "chat":
            rule.chat_ids = [str(rng.randint(1, 10**6)) for _ in range(rng.randint(1, 20))]
        elif kind == "user":
            rule.user_ids = [str(rng.randint(1, 10**6)) for _ in range(rng.randint(1, 20))]
        elif kind == "keywords":
            rule.keywords = rng.sample(WORDS, rng.randint(1, 4)) + [f"kw{pk}"]
            rule.keyword_match = "all"  # the rule's own word must be there too
        elif kind == "pattern":
            rule.pattern = f"zz{pk}zz.*(?:{rng.choice(PATTERNS)})"
        elif kind == "command":
            rule.command = f"cmd{pk}"
        elif kind == "attach":
            rule.attachment_kind = rng.choice(["image", "audio", "video", "file"])
        elif kind == "language":
            rule.language = rng.choice(["zh-hans", "en"])
        else:
            rule.active_from, rule.active_until = (
                clock(rng.randint(0, 23)),
                clock(rng.randint(0, 23), 30),
            )
            rule.time_zone = rng.choice(["Asia/Shanghai", "UTC", "Europe/Berlin"])
            rule.weekdays = rng.sample(range(1, 8), rng.randint(1, 7))
    bots = rng.sample(BOTS, 2) if rng.random() < 0.1 else []
    return rule, bots


def random_message(rng: random.Random) -> RoutingInput:
    words = rng.choices(
        WORDS + ["hello", "please", "help", "我", "想", "问", "一下"], k=rng.randint(1, 30)
    )
    text = " ".join(words) if rng.random() < 0.5 else "".join(words)
    if rng.random() < 0.05:
        text = "a" * 2000 + "!"  # a long, backtracking-bait message
    elif rng.random() < 0.3:  # something one rule looks for (which may still not match)
        marker = rng.choice(["kw{}", "/cmd{}", "zz{}zz 订单号码"]).format(rng.randint(1, 1000))
        text = f"{marker} {text}" if marker.startswith("/") else f"{text} {marker}"
    return RoutingInput(
        bot_id=rng.choice(BOTS),
        platform=rng.choice(["telegram", "feishu", "web"]),
        chat_type=rng.choice(["private", "group"]),
        chat_id=str(rng.randint(1, 10**7)),
        user_id=str(rng.randint(1, 10**7)),
        text=text,
        now=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 60 * 24 * 7)),
        attachment_kinds=(
            frozenset([rng.choice(["image", "file"])]) if rng.random() < 0.1 else frozenset()
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--decisions", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    built = sorted(
        (random_rule(rng, pk) for pk in range(1, args.rules + 1)), key=lambda r: r[0].priority
    )
    started = time.perf_counter()
    ruleset = ruleset_compile(
        [rule for rule, _bots in built], {rule.pk: bots for rule, bots in built}, {}
    )
    compile_ms = (time.perf_counter() - started) * 1000
    bot = Bot(name="bench")
    bot.profile = ModelProfile(pk=1, name="default")
    messages = [random_message(rng) for _ in range(args.decisions)]

    for message in messages[:200]:  # warm up (per-bot lists, lazily compiled patterns)
        decide(bot=bot, item=message, ruleset=ruleset)
    timings = []
    matched = 0
    for message in messages:
        message = RoutingInput(  # fresh, so case folding and language are paid each time
            bot_id=message.bot_id, platform=message.platform, chat_type=message.chat_type,
            chat_id=message.chat_id, user_id=message.user_id, text=message.text, now=message.now,
            attachment_kinds=message.attachment_kinds,
        )  # fmt: skip
        start = time.perf_counter_ns()
        decision = decide(bot=bot, item=message, ruleset=ruleset)
        timings.append(time.perf_counter_ns() - start)
        matched += decision.rule_id is not None
    timings.sort()

    def ms(fraction: float) -> float:
        return timings[min(len(timings) - 1, int(fraction * len(timings)))] / 1e6

    print(f"routing: {args.rules} enabled rules compiled in {compile_ms:.1f} ms")
    print(
        f"{args.decisions} decisions ({matched} matched a rule, "
        f"{args.decisions - matched} fell through to the default)"
    )
    print(f"p50 {ms(0.50):.3f} ms   p99 {ms(0.99):.3f} ms   max {timings[-1] / 1e6:.3f} ms")
    print("goal: p99 <= 1 ms:", "met" if ms(0.99) <= 1.0 else "NOT met")


if __name__ == "__main__":
    main()
