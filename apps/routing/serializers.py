from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.bots.models import Bot
from apps.core.serializers import StrictModelSerializer
from apps.routing.models import Release, ReleaseStep, RoutingRule, Variant


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


class VariantSerializer(StrictModelSerializer):
    """An A/B variant of a rule (or of a bot's default answer): name, weight, and either a
    profile or a configured skill (`skill_instance`)."""

    class Meta:
        model = Variant
        fields = [
            "id",
            "rule",
            "bot",
            "name",
            "weight",
            "profile",
            "skill_instance",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        # The model's full_clean() checks its constraints (a rule or a bot, unique names):
        # DRF's own validators would make the nullable rule and bot required.
        validators: list = []


class ReleaseStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReleaseStep
        fields = ["event", "percent", "answers", "errors", "negative", "reason", "at"]
        read_only_fields = fields


class ReleaseSerializer(StrictModelSerializer):
    """A gray release; its state, step and history are moved by the release task (and by
    pausing and resuming in the admin), not written here."""

    steps = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=100), allow_empty=False
    )
    history = ReleaseStepSerializer(many=True, read_only=True)

    class Meta:
        model = Release
        fields = [
            "id",
            "name",
            "variant",
            "control",
            "steps",
            "min_sample",
            "max_error_rate",
            "max_negative_rate",
            "state",
            "current_step",
            "step_started_at",
            "history",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["state", "current_step", "step_started_at", "created_at", "updated_at"]
