"""The heavy SDKs, imported up front by the long-running processes.

One-shot `manage.py` commands import only what they use: lark-oapi alone takes
seconds to import, openai about one, so the platform and model SDKs are imported
where they are called. The web server and the Celery worker would then pay for
them on their first webhook or turn, on the event loop; they call `sdks_preload()`
as they start instead.
"""

from __future__ import annotations

import importlib

HEAVY_MODULES = (
    "openai",
    "apps.bots.platforms.telegram",  # python-telegram-bot
    "apps.bots.platforms.feishu",  # lark-oapi
)


def sdks_preload() -> None:
    """Import every heavy SDK the pipeline uses (idempotent)."""
    for name in HEAVY_MODULES:
        importlib.import_module(name)
