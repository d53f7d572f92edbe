from apps.audit.api import AuditedModelViewSet
from apps.skills.selectors import skill_instance_list
from apps.skills.serializers import SkillInstanceSerializer
from apps.skills.services import skill_instance_create, skill_instance_update


class SkillInstanceViewSet(AuditedModelViewSet):
    """Bots' skills: which installed skill each runs, with its (validated) settings."""

    queryset = skill_instance_list()
    serializer_class = SkillInstanceSerializer

    def save_new(self, serializer):
        return skill_instance_create(**serializer.validated_data)

    def save_existing(self, serializer):
        return skill_instance_update(instance=serializer.instance, **serializer.validated_data)
