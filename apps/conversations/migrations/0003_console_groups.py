"""Two groups for the staff console: viewers (console, history, dashboard) and operators
(also take conversations over and reply as staff)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEWER_PERMISSIONS = ["view_conversation", "view_message", "view_feedback"]
OPERATOR_PERMISSIONS = [*VIEWER_PERMISSIONS, "takeover_conversation"]
GROUPS = {"Console viewers": VIEWER_PERMISSIONS, "Console operators": OPERATOR_PERMISSIONS}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure they exist now.
    app_config = apps.get_app_config("conversations")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="conversations", codename__in=codenames
            )
        )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("conversations", "0002_feedback_messageattachment_and_more"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
