"""Checking credentials when a bot or a provider is saved (admin and API).

A check asks the platform or the provider whether the credentials work. A refusal
(a bad token, a wrong secret, a rejected key) stops the save with its reason; when
the other side could not be asked (unreachable, timed out, a server error) the
admin's "Save anyway" box, or `"save_anyway": true` in the API, saves without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django import forms
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise


@dataclass(frozen=True)
class CredentialsCheck:
    """What a credentials check found: `ok`, or why not and whether saving anyway is offered."""

    ok: bool
    message: str | StrPromise = ""
    field: str | None = None  # the form field the message belongs to (None: the whole form)
    can_save_anyway: bool = False  # the other side could not be asked: nothing was refused


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value in it replaced by "…" (errors may quote a URL or key)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "…")
    return text


SAVE_ANYWAY_LABEL = _("Save anyway")
SAVE_ANYWAY_HELP = _(
    "The credentials could not be checked: the service did not answer, or could not tell. "
    "Tick this to save them unchecked."
)


class CredentialsCheckedForm(forms.ModelForm):
    """An admin form that checks the instance's credentials once it is otherwise valid.

    Subclasses set `credentials_check`, a function of the unsaved instance that returns
    a CredentialsCheck or None (nothing to check, or nothing changed). The "Save anyway"
    box stays hidden until a check could not reach the other side.
    """

    credentials_check: Callable[[Any], CredentialsCheck | None]

    save_anyway = forms.BooleanField(
        required=False,
        label=SAVE_ANYWAY_LABEL,
        help_text=SAVE_ANYWAY_HELP,
        widget=forms.HiddenInput,
    )

    # ModelForm's hook between cleaning and validating the instance: private, so the
    # stubs do not declare it.
    def _post_clean(self):
        super()._post_clean()  # type: ignore[misc]  # the instance now holds the submitted values
        if self.errors:
            return
        check = type(self).credentials_check(self.instance)
        if check is None or check.ok:
            return
        if check.can_save_anyway:
            self.fields["save_anyway"].widget = forms.CheckboxInput()
            if self.cleaned_data.get("save_anyway"):
                return
        field = check.field if check.field in self.fields else None
        self.add_error(field, check.message)


def credentials_check_or_400(check: CredentialsCheck | None, *, save_anyway: bool) -> None:
    """The API's half: raise a ValidationError (400) with the reason unless saving may go on."""
    if check is None or check.ok or (check.can_save_anyway and save_anyway):
        return
    detail: dict[str, list[str]] = {check.field or "non_field_errors": [str(check.message)]}
    if check.can_save_anyway:
        detail["save_anyway"] = [str(_("Send true to save without checking the credentials."))]
    raise serializers.ValidationError(detail, code="credentials")


def save_anyway_field() -> serializers.BooleanField:
    return serializers.BooleanField(
        write_only=True,
        required=False,
        default=False,
        help_text=_(
            "Save even though the credentials could not be checked: the service did not "
            "answer, or could not tell (e.g. a server that lists no models). A refusal is "
            "never saved."
        ),
    )
