"""The platform registry: the one place the rest of the code asks about chat platforms.

Each platform is a package here (adapter, parsing, formatting, pacing, connector)
whose `__init__.py` declares a `PlatformSpec`; registering a platform is one line in
PACKAGES. Reading the registry imports no platform SDK: an adapter (and its SDK) is
imported the first time one of its bots is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from typing import Any

from django.utils.module_loading import import_string

from apps.bots.platforms.base import DeliveryError, PlatformAdapter, PlatformSpec

# The platform packages under apps/bots/platforms/, in the order the admin lists them.
PACKAGES = ("web", "telegram", "feishu", "wecom")


@cache
def platform_specs() -> dict[str, PlatformSpec]:
    """Every registered platform's spec, by its name."""
    specs = {}
    for package in PACKAGES:
        spec = importlib.import_module(f"{__name__}.{package}").PLATFORM
        specs[spec.name] = spec
    return specs


def platform_spec(name: str) -> PlatformSpec | None:
    """The spec of the platform called `name`, or None."""
    return platform_specs().get(name)


@cache
def adapter_class(name: str) -> type[PlatformAdapter]:
    """The adapter class of a platform (importing its module and SDK the first time)."""
    spec = platform_spec(name)
    if spec is None:
        raise DeliveryError(f"no adapter for platform {name!r}", retryable=False)
    return import_string(spec.adapter)


def adapter_for(bot: Any) -> PlatformAdapter:
    """The adapter for a bot's platform (`bot` is an apps.bots.models.Bot)."""
    make: Callable[[Any], PlatformAdapter] = adapter_class(bot.platform)
    return make(bot)


def connector_paths() -> dict[str, str]:
    """The platforms with a persistent-mode connector: import path by platform name."""
    return {name: spec.connector for name, spec in platform_specs().items() if spec.connector}
