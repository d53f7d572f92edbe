from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BotsConfig(AppConfig):
    name = "apps.bots"
    verbose_name = _("Bots")
    label = "bots"

    def ready(self) -> None:
        from apps.bots.models import Bot
        from apps.core.config import watch_config

        watch_config(Bot)
