from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.fields import EncryptedJSONField


class SkillInstance(models.Model):
    """One bot's configured use of a skill: which skill, its settings, and whether it is on.

    The configuration is validated against the skill's JSON Schema and kept encrypted
    (it may hold secrets: signing keys, API tokens).
    """

    bot = models.ForeignKey(
        "bots.Bot", on_delete=models.CASCADE, related_name="skills", verbose_name=_("bot")
    )
    name = models.CharField(
        max_length=100,
        help_text=_("What operators call it, e.g. “Open a ticket”."),
        verbose_name=_("name"),
    )
    skill = models.CharField(
        max_length=100, help_text=_("The installed skill this runs."), verbose_name=_("skill")
    )
    config = EncryptedJSONField(
        blank=True,
        default=dict,
        help_text=_("The skill's settings as JSON (see the skill's documentation)."),
        verbose_name=_("configuration"),
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("skill")
        verbose_name_plural = _("skills")
        ordering = ["bot", "name"]
        constraints = [
            models.UniqueConstraint(fields=["bot", "name"], name="skills_instance_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.skill})"

    def clean(self) -> None:
        from apps.skills.services import skill_instance_validate

        skill_instance_validate(instance=self)

    def masked_values(self) -> dict:
        """What the audit log keeps of this row: the configuration with its secrets masked."""
        from apps.skills.selectors import config_masked

        masked = config_masked(skill=self.skill, config=self.config or {})
        return {"config": {f"config.{key}": value for key, value in masked.items()}}
