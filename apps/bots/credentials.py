"""Checking a bot's platform credentials before it is saved (Telegram getMe, Feishu token)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from apps.bots.choices import Platform
from apps.bots.models import Bot
from apps.bots.platforms import adapter_for
from apps.bots.platforms.base import DeliveryError
from apps.core.credentials import CredentialsCheck, mask_secrets

# What the platforms authenticate with: a change of any of these is checked again.
CREDENTIAL_FIELDS = {
    Platform.TELEGRAM: ("api_base_url", "telegram_token"),
    Platform.FEISHU: ("api_base_url", "feishu_app_id", "feishu_app_secret"),
}
# The field a refusal is shown on.
CREDENTIAL_ERROR_FIELD = {Platform.TELEGRAM: "telegram_token", Platform.FEISHU: "feishu_app_secret"}


def bot_credentials_changed(*, bot: Bot) -> bool:
    """Whether an unsaved bot's credentials differ from what is stored (a new bot: True)."""
    fields = CREDENTIAL_FIELDS.get(Platform(bot.platform), ())
    stored = Bot.objects.filter(pk=bot.pk).values("platform", *fields).first()
    if stored is None or stored["platform"] != bot.platform:
        return True
    return any(stored[name] != getattr(bot, name) for name in fields)


def bot_credentials_check(bot: Bot) -> CredentialsCheck | None:
    """Ask the bot's platform whether its credentials work, if they are new or changed.

    None when there is nothing to check (the web chat, missing credentials, no change).
    On success the bot's platform_username is filled in (Telegram's @username).
    """
    platform = Platform(bot.platform)
    if platform not in CREDENTIAL_FIELDS or not bot_credentials_changed(bot=bot):
        return None
    if platform == Platform.TELEGRAM and not bot.telegram_token:
        return None  # the form says a token is needed
    if platform == Platform.FEISHU and not (bot.feishu_app_id and bot.feishu_app_secret):
        return None
    secrets = (bot.telegram_token, bot.feishu_app_secret)
    try:
        adapter_for(bot).credentials_check()
    except DeliveryError as error:
        reason = mask_secrets(str(error), secrets)
        names = {"platform": bot.get_platform_display(), "reason": reason}
        if error.retryable:
            return CredentialsCheck(
                ok=False,
                field="api_base_url",
                can_save_anyway=True,
                message=_(
                    "%(platform)s could not be reached to check the credentials (%(reason)s). "
                    "Check the API base URL, or tick “Save anyway” to save them unchecked."
                )
                % names,
            )
        if platform == Platform.TELEGRAM:
            message = _(
                "Telegram refused this token. Copy it again from @BotFather "
                "(it looks like 123456789:AAF…)."
            )
        else:
            message = _(
                "Feishu / Lark refused the app ID or secret (%(reason)s). Copy them again "
                "from the developer console."
            ) % {"reason": reason}
        return CredentialsCheck(ok=False, field=CREDENTIAL_ERROR_FIELD[platform], message=message)
    return CredentialsCheck(ok=True)
