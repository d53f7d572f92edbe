"""`manage.py onboard` for the web chat: nothing to ask or connect; the wizard prints
the chat's link instead of waiting for a first message."""

from apps.bots.platforms.onboarding import PlatformSetup

SETUP = PlatformSetup(platform="web", waits_for_first_event=False)
