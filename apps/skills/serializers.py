from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.core.serializers import StrictModelSerializer
from apps.skills.models import SkillInstance
from apps.skills.selectors import config_masked


class SkillInstanceSerializer(StrictModelSerializer):
    """A bot's skill; its configuration is validated against the skill's JSON Schema.

    Secret settings read back as "<set>"; sending "<set>" keeps the stored value.
    """

    config = serializers.JSONField(
        required=False, help_text=_("The skill's settings; secrets read back as “<set>”.")
    )

    class Meta:
        model = SkillInstance
        fields = ["id", "bot", "name", "skill", "config", "enabled", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["config"] = config_masked(skill=instance.skill, config=instance.config or {})
        return data
