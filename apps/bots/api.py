from apps.audit.api import AuditedModelViewSet
from apps.bots.models import Bot
from apps.bots.serializers import BotSerializer
from apps.bots.services import bot_create, bot_update


class BotViewSet(AuditedModelViewSet):
    """Bots. Creating one returns its webhook URL; secrets are write-only."""

    queryset = Bot.objects.select_related("profile")
    serializer_class = BotSerializer

    def save_new(self, serializer):
        return bot_create(**serializer.validated_data)

    def save_existing(self, serializer):
        return bot_update(bot=serializer.instance, **serializer.validated_data)
