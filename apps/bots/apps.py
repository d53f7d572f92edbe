from django.apps import AppConfig


class BotsConfig(AppConfig):
    name = "apps.bots"
    label = "bots"

    def ready(self) -> None:
        from apps.bots.models import Bot
        from apps.core.config import watch_config

        watch_config(Bot)
