from django.urls import path

from apps.conversations import consumers

websocket_urlpatterns = [
    path("ws/chat/<uuid:bot_id>/", consumers.WebChatConsumer.as_asgi()),
    path("ws/console/", consumers.ConsoleConsumer.as_asgi()),
    path(
        "ws/console/conversations/<int:conversation_id>/",
        consumers.ConsoleConversationConsumer.as_asgi(),
    ),
]
