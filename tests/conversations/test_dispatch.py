"""A task the broker refused (Redis restarting) is enqueued by the same process as soon as
the broker answers again, not only by the sweeper seconds later.

In a process of its own (Django set up as the web and the worker processes are, with
REDIS_URL on a Redis server of the test's own that is not started yet), a turn is asked
for; then the test starts that Redis and reads the broker's queue. The process gets a
SQLite file of its own: asking for a turn touches the database connection (is a
transaction open?), and the DATABASE_URL the tests run with may name a database that
only exists under pytest-django's "test_" name.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from tests.fakes.server import wait_for

ROOT = Path(__file__).resolve().parents[2]

ASK_FOR_A_TURN = """
import sys, time
import django
django.setup()
from apps.conversations.services.dispatch import dispatch_turn, undispatched
dispatch_turn(4242)  # no transaction open: enqueued at once, or held
print(len(undispatched), flush=True)
sys.stdin.readline()  # the test has started Redis
while len(undispatched):
    time.sleep(0.05)
print(len(undispatched), flush=True)
"""


def test_a_turn_the_broker_refused_is_enqueued_once_redis_answers(redis_server_down, tmp_path):
    env = {
        **os.environ,
        "REDIS_URL": redis_server_down.url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DEBUG": "true",
    }
    env.pop("PYTEST_VERSION")  # the settings of a running platform, not of the tests
    env.pop("CELERY_BROKER_URL", None)
    process = subprocess.Popen(  # noqa: S603 (this interpreter, a fixed script)
        [sys.executable, "-c", ASK_FOR_A_TURN],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "assistant.settings"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "1"  # held: the broker was out of reach

        redis_server_down.start()
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.stdout.readline().strip() == "0"
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()

    queued = wait_for(lambda: redis.Redis.from_url(redis_server_down.url).lrange("llm", 0, -1))
    assert len(queued) == 1
    message = json.loads(queued[0])
    assert message["headers"]["task"] == "conversations.respond_task"
    arguments, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert arguments == [4242]
