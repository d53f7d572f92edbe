"""The heavy SDKs, imported up front by the long-running processes.

One-shot `manage.py` commands import only what they use: lark-oapi alone takes
seconds to import, openai about one, so the platform and model SDKs are imported
where they are called. The web server and the Celery worker would then pay for
them on their first webhook or turn, on the event loop; they call `sdks_preload()`
as they start instead, for the platforms their bots use.
"""

from __future__ import annotations

import importlib


def sdks_preload() -> None:
    """Import the model SDK and the adapters (with their SDKs) of the platforms in use.

    A platform no enabled bot uses is not imported: lark-oapi alone takes 5-15 s of
    CPU, which a restarted worker would spend before answering anyone. Its first bot
    imports it when first used.
    """
    from django.conf import settings
    from django.utils.module_loading import import_string

    from apps.bots.platforms import platform_specs

    adapters = {name: spec.adapter for name, spec in platform_specs().items()}
    importlib.import_module("openai")
    platforms = set(adapters)
    if not settings.TESTING:  # tests import the ASGI app before their database exists
        try:
            from apps.bots.models import Bot

            platforms = set(Bot.objects.filter(enabled=True).values_list("platform", flat=True))
        except Exception:  # noqa: BLE001 - no database yet (first start): import them all
            platforms = set(adapters)
    for platform in sorted(platforms & set(adapters)):
        import_string(adapters[platform])
    # The skills (entry points of installed packages too) are found now, not on a first turn.
    from apps.skills.registry import skill_registry

    skill_registry()
    # The MCP SDK (about half a second) only where an MCP skill is configured.
    if not settings.TESTING:
        from apps.skills.models import SkillInstance

        try:
            mcp_used = SkillInstance.objects.filter(skill="mcp", enabled=True).exists()
        except Exception:  # noqa: BLE001 - no database yet: its first call imports it
            mcp_used = False
        if mcp_used:
            importlib.import_module("mcp.client.streamable_http")


def start_up_objects_freeze() -> None:
    """Keep what start-up built (modules, Django's registries, the SDKs) out of the
    garbage collector's passes, and let it run less often over what turns allocate.

    Called by the worker and the web server as they start. In a 500-user burst the
    worker's collector otherwise ran full passes over those long-lived objects at
    0.2-0.26 s each, the process loop standing still meanwhile, 0.8 s in all; frozen,
    with a young generation of 5,000 objects, 0.2 s and no full pass (`gc.callbacks`
    timing each collection, `bench/run.py --only bursts --bursts 500`, 2026-11-24).
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(5000, 10, 10)
