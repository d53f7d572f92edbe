from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConversationsConfig(AppConfig):
    name = "apps.conversations"
    verbose_name = _("Conversations")
    label = "conversations"

    def ready(self) -> None:
        from apps.bots.services import inbound_sink_set
        from apps.conversations.services.inbound import inbound_store

        # bots hands what platforms send to this app without importing it.
        inbound_sink_set(sink=inbound_store)
