"""Providers' extra headers (often an Authorization header) were stored in plaintext JSON:
move them into an encrypted column, keeping every value."""

from django.db import migrations

import apps.core.fields


def encrypt_headers(apps, schema_editor):
    Provider = apps.get_model("providers", "Provider")
    for provider in Provider.objects.exclude(extra_headers_plain={}):
        provider.extra_headers = provider.extra_headers_plain or {}
        provider.save(update_fields=["extra_headers"])


def decrypt_headers(apps, schema_editor):
    Provider = apps.get_model("providers", "Provider")
    for provider in Provider.objects.all():
        provider.extra_headers_plain = provider.extra_headers or {}
        provider.save(update_fields=["extra_headers_plain"])


class Migration(migrations.Migration):
    dependencies = [("providers", "0003_local_profile_timeouts")]

    operations = [
        migrations.RenameField("provider", "extra_headers", "extra_headers_plain"),
        migrations.AddField(
            model_name="provider",
            name="extra_headers",
            field=apps.core.fields.EncryptedJSONField(
                blank=True,
                default=dict,
                help_text='Sent with every request, e.g. {"X-Org": "acme"}. Stored encrypted '
                "(an Authorization header is a credential), shown masked.",
            ),
        ),
        migrations.RunPython(encrypt_headers, decrypt_headers),
        migrations.RemoveField("provider", "extra_headers_plain"),
    ]
