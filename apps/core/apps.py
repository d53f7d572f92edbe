from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "apps.core"
    verbose_name = _("Core")
    label = "core"

    def ready(self) -> None:
        from apps.core.logs import record_factory_install

        post_migrate.connect(_sync_roles, dispatch_uid="core-roles-sync")
        record_factory_install()


def _sync_roles(sender, **kwargs) -> None:
    # post_migrate is sent once per app with models: act on the last one, when every
    # app's permissions exist.
    with_models = [config for config in apps.get_app_configs() if config.models_module]
    if with_models and sender is with_models[-1]:
        from apps.core.roles import roles_sync

        roles_sync()
