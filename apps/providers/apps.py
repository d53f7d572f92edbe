from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "apps.providers"
    label = "providers"

    def ready(self) -> None:
        from apps.core.config import watch_config
        from apps.providers.models import ModelProfile, Provider

        watch_config(ModelProfile, Provider)
