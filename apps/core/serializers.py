"""Serializer behaviour shared by the management API."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import serializers


class StrictModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer that answers 400 for fields it does not know.

    DRF ignores unknown keys, so a misspelt setting (or one the API does not offer)
    would answer 200 and change nothing. Read-only fields it knows are still accepted
    and ignored, so a client may send back an object it read.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [_("Unknown field.")] for name in unknown}, code="unknown_field"
                )
        return super().to_internal_value(data)
