"""Checking a provider's endpoint and key before it is saved: GET /models.

The only openai import outside apps/providers/client.py: a one-off call from the admin or
the API, with its own short-lived client (the model client's pooled clients belong to
the workers' event loop).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from apps.core.credentials import CredentialsCheck, mask_secrets
from apps.providers.models import Provider

CREDENTIAL_FIELDS = ("base_url", "api_key", "extra_headers")
CHECK_TIMEOUT_SECONDS = 10.0


def provider_credentials_changed(*, provider: Provider) -> bool:
    """Whether an unsaved provider's endpoint, key or headers differ from what is stored."""
    stored = Provider.objects.filter(pk=provider.pk).first() if provider.pk else None
    if stored is None:
        return True
    return any(getattr(stored, name) != getattr(provider, name) for name in CREDENTIAL_FIELDS)


def provider_models_list(*, provider: Provider) -> list[str]:
    """The model names the provider lists (GET /models). Raises openai's errors."""
    import openai

    with openai.OpenAI(
        base_url=provider.base_url,
        api_key=provider.api_key or "not-needed",
        timeout=min(provider.request_timeout, CHECK_TIMEOUT_SECONDS),
        default_headers=provider.extra_headers or None,
        max_retries=0,
    ) as client:
        return [model.id for model in client.models.list()]


def provider_credentials_check(provider: Provider) -> CredentialsCheck | None:
    """Ask the provider for its models with this key, if the endpoint or key is new or changed.

    None when nothing changed. A refused key stops the save;
    an endpoint that does not answer, or does not list models, may be saved anyway.
    """
    import openai

    if not provider_credentials_changed(provider=provider):
        return None
    secrets = [provider.api_key, *(provider.extra_headers or {}).values()]
    try:
        provider_models_list(provider=provider)
    except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
        return CredentialsCheck(
            ok=False,
            field="api_key",
            message=_("The provider refused the API key (HTTP %(status)d): %(reason)s")
            % {"status": error.status_code, "reason": mask_secrets(_reason(error), secrets)},
        )
    except openai.APIStatusError as error:
        return CredentialsCheck(
            ok=False,
            field="base_url",
            can_save_anyway=True,
            message=_(
                "GET %(url)s/models answered HTTP %(status)d: %(reason)s. Check the base URL "
                "(it usually ends in /v1), or tick “Save anyway” if this server lists no models."
            )
            % {
                "url": provider.base_url.rstrip("/"),
                "status": error.status_code,
                "reason": mask_secrets(_reason(error), secrets),
            },
        )
    except openai.APIError as error:  # connection refused, DNS, timeout, unreadable answer
        return CredentialsCheck(
            ok=False,
            field="base_url",
            can_save_anyway=True,
            message=_(
                "The provider could not be reached to check the key (%(reason)s). Check the "
                "base URL, or tick “Save anyway” to save it unchecked."
            )
            % {"reason": mask_secrets(f"{error.__class__.__name__}: {error}", secrets)},
        )
    return CredentialsCheck(ok=True)


def _reason(error) -> str:
    """The message in an OpenAI-style error body, or the SDK's own."""
    body = error.body if isinstance(error.body, dict) else {}
    nested = body.get("error")
    inner = nested if isinstance(nested, dict) else body
    return str(inner.get("message") or error.message)[:300]
