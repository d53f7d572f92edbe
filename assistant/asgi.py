"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from apps.bots.webhooks import WebhookApp  # noqa: E402
from apps.core.preload import sdks_preload, start_up_objects_freeze  # noqa: E402
from assistant.routing import websocket_urlpatterns  # noqa: E402

# At start, not on the first webhook: importing the platform SDKs takes seconds.
sdks_preload()

if settings.DEBUG:
    # `make run` has no nginx in front; production serves /static/ from nginx.
    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

if not settings.TESTING:  # a test run's objects come and go; the server's stay
    start_up_objects_freeze()

application = ProtocolTypeRouter(
    {
        # Webhooks take a short path in front of Django (apps/bots/webhooks.py).
        "http": WebhookApp(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
