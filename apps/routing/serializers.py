from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.bots.models import Bot
from apps.core.serializers import StrictModelSerializer
from apps.routing.models import RoutingRule


class RoutingRuleSerializer(StrictModelSerializer):
    """A routing rule; its fields are validated like the admin's (regular expression with RE2)."""

    bots = serializers.PrimaryKeyRelatedField(
        queryset=Bot.objects.all(),
        many=True,
        required=False,
        help_text=_("The bots this rule applies to; empty means every bot."),
    )
    chat_ids = serializers.ListField(child=serializers.CharField(), required=False)
    user_ids = serializers.ListField(child=serializers.CharField(), required=False)
    keywords = serializers.ListField(child=serializers.CharField(), required=False)
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=7), required=False
    )

    class Meta:
        model = RoutingRule
        fields = [
            "id",
            "name",
            "enabled",
            "priority",
            "bots",
            "platform",
            "chat_type",
            "chat_ids",
            "user_ids",
            "keywords",
            "keyword_match",
            "pattern",
            "command",
            "attachment_kind",
            "language",
            "active_from",
            "active_until",
            "weekdays",
            "time_zone",
            "action",
            "profile",
            "extra_system_prompt",
            "reply_template",
            "skill",
            "skill_instance",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
