"""Checking a bot's platform credentials before it is saved (Telegram getMe, Feishu token)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from django.utils.translation import gettext_lazy as _

from apps.bots.config import config_field_name, config_fields, config_secret_values
from apps.bots.models import Bot
from apps.bots.platforms import adapter_for, platform_spec
from apps.bots.platforms.base import DeliveryError
from apps.core.credentials import CredentialsCheck, mask_secrets


@runtime_checkable
class CredentialsCheckingAdapter(Protocol):
    """An adapter that can ask its platform whether the bot's credentials work."""

    def credentials_check(self) -> str:
        """The bot's name on the platform; raises DeliveryError (`retryable` when the
        platform could not be asked, not when it refused the credentials)."""
        ...


def _credential_keys(platform: str) -> list[str]:
    return [field.key for field in config_fields(platform) if field.credential]


def bot_credentials_changed(*, bot: Bot) -> bool:
    """Whether an unsaved bot's credentials differ from what is stored (a new bot: True)."""
    stored = Bot.objects.filter(pk=bot.pk).only("platform", "api_base_url", "config").first()
    if stored is None or stored.platform != bot.platform:
        return True
    if stored.api_base_url != bot.api_base_url:
        return True
    return any(
        (stored.config or {}).get(key) != (bot.config or {}).get(key)
        for key in _credential_keys(bot.platform)
    )


def bot_credentials_check(bot: Bot) -> CredentialsCheck | None:
    """Ask the bot's platform whether its credentials work, if they are new or changed.

    None when there is nothing to check (no credentials in the platform's schema, some
    missing, no change). On success the bot's platform_username is filled in (Telegram's
    @username).
    """
    keys = _credential_keys(bot.platform)
    config = bot.config or {}
    if not keys or not all(config.get(key) for key in keys):
        return None  # the form says what is missing
    if not bot_credentials_changed(bot=bot):
        return None
    adapter = adapter_for(bot)
    if not isinstance(adapter, CredentialsCheckingAdapter):
        return None  # the platform has no way to check them
    try:
        adapter.credentials_check()
    except DeliveryError as error:
        reason = mask_secrets(
            str(error), config_secret_values(platform=bot.platform, config=config)
        )
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
        # The refusal is shown on the last credential (the secret, after any app ID).
        field = config_field_name(bot.platform, keys[-1])
        spec = platform_spec(bot.platform)
        refused = spec.credentials_refused if spec is not None else "%(reason)s"
        return CredentialsCheck(ok=False, field=field, message=refused % names)
    return CredentialsCheck(ok=True)
