"""The API half of the configuration change log (the admin half is AuditedModelAdmin)."""

from contextlib import contextmanager

from django.core.exceptions import ValidationError as ModelValidationError
from django.db import transaction
from django.db.models import ProtectedError
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import APIException

from apps.audit.services import audit_config_change, snapshot


class InUse(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "in_use"


@contextmanager
def _model_errors_as_400():
    """A model's own validation (full_clean in the services) answers 400, not 500."""
    try:
        yield
    except ModelValidationError as error:
        detail = error.message_dict if hasattr(error, "error_dict") else error.messages
        raise serializers.ValidationError(detail) from error


class AuditedModelViewSet(viewsets.ModelViewSet):
    """A ModelViewSet whose create, update and delete are written to the audit log."""

    def save_new(self, serializer):
        return serializer.save()

    def save_existing(self, serializer):
        return serializer.save()

    def perform_create(self, serializer):
        with _model_errors_as_400(), transaction.atomic():
            instance = serializer.instance = self.save_new(serializer)
            audit_config_change(
                request=self.request, instance=instance, before=None, action="create"
            )

    def perform_update(self, serializer):
        before = snapshot(serializer.instance)
        with _model_errors_as_400(), transaction.atomic():
            instance = serializer.instance = self.save_existing(serializer)
            audit_config_change(
                request=self.request, instance=instance, before=before, action="update"
            )

    def perform_destroy(self, instance):
        try:
            with transaction.atomic():
                audit_config_change(
                    request=self.request,
                    instance=instance,
                    before=snapshot(instance),
                    action="delete",
                )
                instance.delete()
        except ProtectedError as error:
            users = ", ".join(sorted({str(obj) for obj in error.protected_objects})[:5])
            raise InUse(f"{instance} is still used by: {users}") from error
