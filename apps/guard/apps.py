from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GuardConfig(AppConfig):
    name = "apps.guard"
    verbose_name = _("Flood limits")
    label = "guard"

    def ready(self) -> None:
        from apps.core.config import watch_config
        from apps.guard.models import FloodLimits

        # Saving the limits moves the configuration version every process watches.
        watch_config(FloodLimits)
