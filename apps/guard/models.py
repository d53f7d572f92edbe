from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

SINGLETON_ID = 1


def _limit(verbose_name, default: int, help_text) -> models.PositiveIntegerField:
    return models.PositiveIntegerField(
        verbose_name, default=default, help_text=help_text, validators=[MinValueValidator(0)]
    )


class FloodLimits(models.Model):
    """How fast users, bots and client addresses may send (one row, edited in the admin).

    Each limit is a token bucket in Redis: up to N at once, then N per minute; 0 turns
    that limit off.
    """

    enabled = models.BooleanField(
        _("enabled"), default=True, help_text=_("Off: nothing is rate limited.")
    )
    user_messages_per_minute = _limit(
        _("messages per user per minute"),
        20,
        _(
            "Per platform user and bot (Telegram, Feishu/Lark, web chat). Messages beyond "
            "it are kept, marked skipped (“rate limited”) and not answered; the user is told."
        ),
    )
    bot_messages_per_minute = _limit(
        _("messages per bot per minute"),
        6000,
        _("All users of one bot together. Keep it well above the per-user limit."),
    )
    notice_interval_seconds = _limit(
        _("notice interval (seconds)"),
        60,
        _("A rate-limited user is told at most once in this many seconds."),
    )
    web_chat_messages_per_minute = _limit(
        _("web chat messages per address per minute"),
        30,
        _("Websocket messages per client IP address; beyond it the page shows an error."),
    )
    api_requests_per_minute = _limit(
        _("API requests per address per minute"),
        300,
        _("REST API requests per client IP address; beyond it the answer is HTTP 429."),
    )
    login_attempts_per_minute = _limit(
        _("login attempts per address per minute"),
        10,
        _(
            "Login attempts per client IP address, on top of the lockout after repeated "
            "failures; beyond it the answer is HTTP 429."
        ),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("flood limits")
        verbose_name_plural = _("flood limits")

    def __str__(self) -> str:
        return str(_("Flood limits"))
