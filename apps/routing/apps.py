from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RoutingConfig(AppConfig):
    name = "apps.routing"
    verbose_name = _("Routing")
    label = "routing"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed

        from apps.core.config import config_changed, watch_config
        from apps.routing.models import Release, RoutingRule, Variant

        watch_config(RoutingRule, Variant, Release)

        def bots_changed(sender, action: str, **kwargs) -> None:
            if action in ("post_add", "post_remove", "post_clear"):
                config_changed()

        m2m_changed.connect(
            bots_changed,
            sender=RoutingRule.bots.through,
            dispatch_uid="routing-rule-bots",
            weak=False,
        )
