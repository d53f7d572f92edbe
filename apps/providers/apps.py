from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProvidersConfig(AppConfig):
    name = "apps.providers"
    verbose_name = _("Models")
    label = "providers"

    def ready(self) -> None:
        from apps.core.config import watch_config
        from apps.providers.models import ModelProfile, Provider

        watch_config(ModelProfile, Provider)
