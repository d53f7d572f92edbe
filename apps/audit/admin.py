from django.contrib import admin
from django.db import transaction

from apps.audit.models import AuditEvent
from apps.audit.services import audit_config_change, snapshot


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "action", "target_repr", "ip_address"]
    list_filter = ["action", "target_type"]
    search_fields = ["action", "target_repr", "target_id", "actor__username"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AuditedModelAdmin(admin.ModelAdmin):
    """Records every admin create, change and delete of a configuration row."""

    def save_model(self, request, obj, form, change):
        before = snapshot(type(obj).objects.get(pk=obj.pk)) if change else None
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit_config_change(
                request=request,
                instance=obj,
                before=before,
                action="update" if change else "create",
            )

    def delete_model(self, request, obj):
        with transaction.atomic():
            audit_config_change(
                request=request, instance=obj, before=snapshot(obj), action="delete"
            )
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                audit_config_change(
                    request=request, instance=obj, before=snapshot(obj), action="delete"
                )
            super().delete_queryset(request, queryset)
