from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SkillsConfig(AppConfig):
    name = "apps.skills"
    verbose_name = _("Skills")
    label = "skills"

    def ready(self) -> None:
        from apps.core.config import watch_config
        from apps.skills.models import SkillInstance

        watch_config(SkillInstance)
