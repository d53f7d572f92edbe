"""Which SDKs a process imports: one-shot commands none, servers all of them at start.

Importing lark-oapi takes seconds and openai about one, so `manage.py` commands must
not pay for them, while the web server and the worker must not pay on their first
webhook or turn. Each case runs in a fresh interpreter (this one has imported all).
"""

from __future__ import annotations

import json
import subprocess
import sys

from django.conf import settings

SDKS = ("lark_oapi", "telegram", "openai", "llama_cpp")

MANAGE_CHECK = """
import runpy, sys
sys.argv = ["manage.py", "check"]
runpy.run_path("manage.py", run_name="__main__")
"""
WEB_SERVER = "import assistant.asgi"
WORKER_START = """
from celery.signals import worker_init
from assistant.celery import app
worker_init.send(sender=None)
"""


def imported_sdks(script: str) -> list[str]:
    report = f"import json, sys; print(json.dumps([m for m in {SDKS!r} if m in sys.modules]))"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", f"import sys; sys.path.insert(0, '.')\n{script}\n{report}"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_manage_py_check_imports_no_platform_or_model_sdk():
    assert imported_sdks(MANAGE_CHECK) == []


def test_the_web_server_and_the_worker_import_the_sdks_as_they_start():
    assert imported_sdks(WEB_SERVER) == ["lark_oapi", "telegram", "openai"]
    assert imported_sdks(WORKER_START) == ["lark_oapi", "telegram", "openai"]
