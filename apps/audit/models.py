from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    """One recorded action: who changed what, when and from where. Never edited."""

    created_at = models.DateTimeField(
        auto_now_add=True, db_index=True, verbose_name=_("created at")
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The staff user who acted; empty for the system itself."),
        verbose_name=_("actor"),
    )
    action = models.CharField(
        max_length=64, db_index=True, help_text=_("e.g. bot.create"), verbose_name=_("action")
    )
    target_type = models.CharField(max_length=64, blank=True, verbose_name=_("target type"))
    target_id = models.CharField(max_length=64, blank=True, verbose_name=_("target ID"))
    target_repr = models.CharField(max_length=200, blank=True, verbose_name=_("target repr"))
    changes = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("Changed fields; secrets are recorded as changed only."),
        verbose_name=_("changes"),
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True, verbose_name=_("IP address"))

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.target_repr}"
