from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db import transaction

from apps.audit.models import AuditEvent
from apps.audit.services import audit_config_change, audit_record, client_ip, snapshot


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


class _AuditedRelationsMixin(admin.ModelAdmin):
    """Also records changes of many-to-many fields (a user's groups, a group's permissions)."""

    audited_relations: tuple[str, ...] = ()

    def _relations(self, obj) -> dict[str, list[str]]:
        if obj.pk is None:
            return {}
        return {name: sorted(map(str, getattr(obj, name).all())) for name in self.audited_relations}

    def save_related(self, request, form, formsets, change):
        before = self._relations(form.instance) if change else {}
        super().save_related(request, form, formsets, change)
        after = self._relations(form.instance)
        changes = {
            name: {"from": before.get(name, []), "to": value}
            for name, value in after.items()
            if before.get(name, []) != value
        }
        if changes:
            audit_record(
                action=f"{form.instance._meta.model_name}.{'/'.join(changes)}",
                actor=request.user,
                target=form.instance,
                changes=changes,
                ip_address=client_ip(request),
            )


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(_AuditedRelationsMixin, AuditedModelAdmin, UserAdmin):
    """Users, with every change audited (the password only as "<set>")."""

    audited_relations = ("groups", "user_permissions")

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:  # changed
            audit_record(
                action="user.password",
                actor=request.user,
                target=User.objects.get(pk=id),
                changes={"password": "<set>"},
                ip_address=client_ip(request),
            )
        return response


@admin.register(Group)
class AuditedGroupAdmin(_AuditedRelationsMixin, AuditedModelAdmin, GroupAdmin):
    """Groups (roles), with their permissions' changes audited."""

    audited_relations = ("permissions",)
