from typing import Any

from django.urls import path

from apps.conversations import consumers


def _route(route: str, consumer: Any) -> Any:
    """Django's path() for a consumer's ASGI app, as channels routes them (django-stubs'
    path() knows only views, and types-channels' URLRouter only its own pattern type)."""
    return path(route, consumer)


websocket_urlpatterns = [
    _route("ws/chat/<uuid:bot_id>/", consumers.WebChatConsumer.as_asgi()),
    _route("ws/console/", consumers.ConsoleConsumer.as_asgi()),
    _route(
        "ws/console/conversations/<int:conversation_id>/",
        consumers.ConsoleConversationConsumer.as_asgi(),
    ),
]
