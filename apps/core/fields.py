"""Model fields that keep secrets encrypted at rest (Fernet, keys from settings)."""

import json
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"


@cache
def _fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in settings.FIELD_ENCRYPTION_KEYS])
    except ValueError as error:
        raise ImproperlyConfigured(
            f"FIELD_ENCRYPTION_KEY is not a valid Fernet key: {error}"
        ) from error


def encrypt(value: str) -> str:
    return PREFIX + _fernet().encrypt(value.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise ImproperlyConfigured("An encrypted field holds a value that is not encrypted.")
    try:
        return _fernet().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken as error:
        raise ImproperlyConfigured(
            "Cannot decrypt a secret: FIELD_ENCRYPTION_KEY differs from the key it was "
            "written with (list the old key after the new one to rotate)."
        ) from error


class EncryptedTextField(models.TextField):
    """A text column stored Fernet-encrypted; Python code sees plain text.

    The first key in FIELD_ENCRYPTION_KEY encrypts; every listed key decrypts, so
    keys rotate by prepending a new one.
    """

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(value)


class EncryptedJSONField(EncryptedTextField):
    """A JSON object stored Fernet-encrypted (e.g. HTTP headers that carry credentials)."""

    # The attribute's type for django-stubs: the object, not the text column it is kept in.
    _pyi_private_set_type: dict[str, str] | None  # type: ignore[assignment]
    _pyi_private_get_type: dict[str, str]  # type: ignore[assignment]

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return {}
        return json.loads(decrypt(value))

    def to_python(self, value):
        if isinstance(value, str):
            return json.loads(value) if value else {}
        return value if value is not None else {}

    def get_prep_value(self, value):
        if value in (None, {}):
            return ""
        return encrypt(json.dumps(value, sort_keys=True))

    def value_to_string(self, obj):
        return json.dumps(self.value_from_object(obj))

    def formfield(self, **kwargs):
        from django import forms

        return super(models.TextField, self).formfield(**{"form_class": forms.JSONField, **kwargs})
