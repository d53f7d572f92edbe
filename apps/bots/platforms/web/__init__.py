"""The built-in web chat: frames over a Channels websocket, answers over the channel layer."""

from django.utils.translation import gettext_lazy as _

from apps.bots.platforms.base import PlatformSpec

PLATFORM = PlatformSpec(
    name="web",
    label=_("Web chat"),
    adapter="apps.bots.platforms.web.adapter.WebChatAdapter",
    onboarding="apps.bots.platforms.web.onboarding.SETUP",
    webhook=False,
)
