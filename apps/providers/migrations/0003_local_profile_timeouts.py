"""The bundled local model's profile, provisioned with the 3 s first-token time-out meant for
hosted APIs, failed the very first message of a new install (a cold CPU model). Give
existing local profiles still at the old defaults the time-outs new installs get."""

from django.db import migrations

LOCAL_MODEL_ALIAS = "smollm2-135m-instruct"  # apps.providers.local, frozen here
LOCAL_FIRST_TOKEN_SECONDS = 60.0


def fit_local_timeouts(apps, schema_editor):
    ModelProfile = apps.get_model("providers", "ModelProfile")
    ModelProfile.objects.filter(model=LOCAL_MODEL_ALIAS, first_token_timeout=3.0).update(
        first_token_timeout=LOCAL_FIRST_TOKEN_SECONDS
    )
    ModelProfile.objects.filter(model=LOCAL_MODEL_ALIAS, stall_timeout=20.0).update(
        stall_timeout=LOCAL_FIRST_TOKEN_SECONDS
    )


class Migration(migrations.Migration):
    dependencies = [("providers", "0002_resilience_context_cost_media")]

    operations = [migrations.RunPython(fit_local_timeouts, migrations.RunPython.noop)]
