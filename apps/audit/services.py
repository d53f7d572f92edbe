"""Writing the audit log. Call inside the transaction of the change it records."""

from typing import Any

from django.db import models

from apps.audit.models import AuditEvent
from apps.core.fields import EncryptedTextField


def audit_record(
    *,
    action: str,
    actor=None,
    target: models.Model | None = None,
    changes: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    """Append one AuditEvent."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEvent.objects.create(
        action=action,
        actor=actor,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        changes=changes or {},
        ip_address=ip_address,
    )


def snapshot(instance: models.Model) -> dict[str, Any]:
    """Field values of a configuration row, with secrets replaced by a marker."""
    values: dict[str, Any] = {}
    # A model whose encrypted JSON holds secrets and settings says how to show it.
    masked = instance.masked_values() if hasattr(instance, "masked_values") else {}
    for field in instance._meta.concrete_fields:
        if getattr(field, "auto_now", False):
            continue  # timestamps change on every save; the event has its own
        if field.name in masked:
            values.update(masked[field.name])
            continue
        value = getattr(instance, field.attname)
        if isinstance(field, EncryptedTextField) or field.name == "password":
            value = "<set>" if value else ""
        elif not isinstance(value, (str, int, float, bool, type(None), list, dict)):
            value = str(value)
        values[field.name] = value
    return values


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {"from": before.get(name), "to": value}
        for name, value in after.items()
        if before.get(name) != value
    }


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def audit_config_change(*, request, instance: models.Model, before: dict | None, action: str):
    """The one change-logging hook for admin and API edits of configuration rows.

    `before` is the snapshot taken before the edit (None for a create).
    """
    label = instance._meta.model_name
    if action == "delete":
        changes = before or {}
    else:
        changes = diff(before or {}, snapshot(instance))
        if before is not None and not changes:
            return None
    return audit_record(
        action=f"{label}.{action}",
        actor=getattr(request, "user", None),
        target=instance,
        changes=changes,
        ip_address=client_ip(request),
    )


def audit_sign_in(*, action: str, request, user=None, username: str = "") -> AuditEvent:
    """A login, logout or failed login (never the password)."""
    return audit_record(
        action=action,
        actor=user,
        changes={"username": username or getattr(user, "username", "")},
        ip_address=client_ip(request),
    )
