from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.audit.admin import AuditedModelAdmin
from apps.guard.models import SINGLETON_ID, FloodLimits


@admin.register(FloodLimits)
class FloodLimitsAdmin(AuditedModelAdmin):
    """The one row of limits: the list goes straight to it; it is never added or deleted."""

    readonly_fields = ["updated_at"]
    fieldsets = [
        (None, {"fields": ["enabled", "updated_at"]}),
        (
            _("Chats"),
            {
                "fields": [
                    "user_messages_per_minute",
                    "bot_messages_per_minute",
                    "notice_interval_seconds",
                ]
            },
        ),
        (
            _("Client addresses"),
            {
                "fields": [
                    "web_chat_messages_per_minute",
                    "api_requests_per_minute",
                    "login_attempts_per_minute",
                ]
            },
        ),
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)  # refused as usual
        FloodLimits.objects.get_or_create(pk=SINGLETON_ID)
        return HttpResponseRedirect(reverse("admin:guard_floodlimits_change", args=[SINGLETON_ID]))
