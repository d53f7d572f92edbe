"""The telegram_* and feishu_* columns become one encrypted JSON config per bot, shaped
by its platform's schema (apps/bots/platforms/<platform>/__init__.py); the long-polling
offset keeps its value under a platform-neutral name."""

from django.db import migrations, models

import apps.core.fields

# column -> (platform, key in config)
COLUMNS = {
    "telegram_token": ("telegram", "token"),
    "telegram_webhook_secret": ("telegram", "webhook_secret"),
    "feishu_app_id": ("feishu", "app_id"),
    "feishu_app_secret": ("feishu", "app_secret"),
    "feishu_verification_token": ("feishu", "verification_token"),
    "feishu_encrypt_key": ("feishu", "encrypt_key"),
}


def columns_to_config(apps, schema_editor):
    Bot = apps.get_model("bots", "Bot")
    for bot in Bot.objects.all():
        config = {
            key: getattr(bot, column)
            for column, (platform, key) in COLUMNS.items()
            if platform == bot.platform and getattr(bot, column)
        }
        if config:
            bot.config = config
            bot.save(update_fields=["config"])


def config_to_columns(apps, schema_editor):
    Bot = apps.get_model("bots", "Bot")
    for bot in Bot.objects.all():
        config = bot.config or {}
        for column, (platform, key) in COLUMNS.items():
            if platform == bot.platform:
                setattr(bot, column, config.get(key, ""))
        bot.save(update_fields=list(COLUMNS))


class Migration(migrations.Migration):
    dependencies = [("bots", "0005_bot_mask_personal_data")]

    operations = [
        migrations.AddField(
            model_name="bot",
            name="config",
            field=apps.core.fields.EncryptedJSONField(
                blank=True,
                default=dict,
                help_text="The platform's settings and credentials, as its package declares them (apps/bots/platforms/<platform>/). Stored encrypted; secrets are never shown.",
                verbose_name="platform settings",
            ),
        ),
        migrations.RunPython(columns_to_config, config_to_columns),
        *(migrations.RemoveField(model_name="bot", name=column) for column in COLUMNS),
        migrations.RenameField(
            model_name="bot", old_name="telegram_update_offset", new_name="poll_offset"
        ),
        migrations.AlterField(
            model_name="bot",
            name="poll_offset",
            field=models.BigIntegerField(
                blank=True,
                help_text="Long polling: the next update id to fetch.",
                null=True,
                verbose_name="poll offset",
            ),
        ),
    ]
