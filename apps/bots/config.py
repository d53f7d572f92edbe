"""A bot's platform settings and credentials: one encrypted JSON object, one schema each.

Each platform declares its fields (`PlatformSpec.config`, in its package); this module
is the one place that reads those declarations, for the admin form, the API serializer,
validation, defaults and masking alike. Forms and the API name a field
"<platform>_<key>" (telegram_token, feishu_app_id), the audit log too.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apps.bots.platforms import platform_spec, platform_specs
from apps.bots.platforms.base import ConfigField

SET_MARKER = "<set>"


def config_fields(platform: str) -> tuple[ConfigField, ...]:
    """The settings a platform's bots have (none for an unknown platform)."""
    spec = platform_spec(platform)
    return spec.config if spec is not None else ()


def config_field_name(platform: str, key: str) -> str:
    """The name forms, the API and the audit log give a platform setting."""
    return f"{platform}_{key}"


def config_field_names() -> dict[str, tuple[str, ConfigField]]:
    """Every platform's settings by their form/API name: (platform, field)."""
    return {
        config_field_name(name, field.key): (name, field)
        for name, spec in platform_specs().items()
        for field in spec.config
    }


def config_validate(
    *, platform: str, values: dict[str, Any], current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The bot's new config: `current` with `values` (by key) applied, checked by the schema.

    An empty secret keeps the current one (forms never show secrets); a generated
    field left empty is made up. Raises ValidationError keyed by form/API name for an
    unknown key, a value that is not text or too long, or a missing required field.
    """
    fields = {field.key: field for field in config_fields(platform)}
    errors: dict[str, list[Any]] = {}
    for key in values:
        if key not in fields:
            errors[config_field_name(platform, key)] = [_("Not a setting of this platform.")]
    config = {key: value for key, value in (current or {}).items() if key in fields}
    for key, field in fields.items():
        name = config_field_name(platform, key)
        if key in values:
            value = values[key]
            if value is None:
                value = ""
            if not isinstance(value, str):
                errors[name] = [_("Enter text.")]
                continue
            value = value.strip()
            if len(value) > field.max_length:
                errors[name] = [_("At most %(count)d characters.") % {"count": field.max_length}]
                continue
            if value or not field.secret:
                config[key] = value
        if field.generated and not config.get(key):
            config[key] = secrets.token_urlsafe(32)
        if field.required and not config.get(key):
            errors.setdefault(
                name, [_("Needed for this platform: %(label)s.") % {"label": field.label}]
            )
    if errors:
        raise ValidationError(errors)
    return {key: value for key, value in config.items() if value != ""}


def connection_mode_check(*, platform: str, connection_mode: str) -> None:
    """Persistent mode only for a platform with a connector (WeCom, for one, only calls
    a webhook URL); raises ValidationError on `connection_mode` otherwise."""
    spec = platform_spec(platform)
    if connection_mode == "persistent" and spec is not None and spec.webhook and not spec.connector:
        raise ValidationError(
            {
                "connection_mode": _(
                    "%(platform)s has no persistent connection: it calls the bot's webhook "
                    "URL. Choose webhook mode."
                )
                % {"platform": spec.label}
            }
        )


def config_public(*, platform: str, config: dict[str, Any]) -> dict[str, Any]:
    """The settings that may be shown, by form/API name (secrets left out)."""
    return {
        config_field_name(platform, field.key): config.get(field.key, "")
        for field in config_fields(platform)
        if not field.secret
    }


def config_secrets_set(*, platform: str, config: dict[str, Any]) -> list[str]:
    """The form/API names of the secrets that are set (never their values)."""
    return [
        config_field_name(platform, field.key)
        for field in config_fields(platform)
        if field.secret and config.get(field.key)
    ]


def config_masked(*, platform: str, config: dict[str, Any]) -> dict[str, Any]:
    """Every setting by form/API name, secrets as "<set>" or "": what the audit log keeps."""
    return {
        config_field_name(platform, field.key): (
            (SET_MARKER if config.get(field.key) else "")
            if field.secret
            else config.get(field.key, "")
        )
        for field in config_fields(platform)
    }


def config_secret_values(*, platform: str, config: dict[str, Any]) -> list[str]:
    """The secret values themselves, to mask them out of error messages."""
    return [config.get(field.key, "") for field in config_fields(platform) if field.secret]
