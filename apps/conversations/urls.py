"""The staff console: /console/ (live list and conversations), history, dashboard."""

from django.urls import path

from apps.conversations import views

urlpatterns = [
    path("", views.console_list, name="console"),
    path(
        "conversations/<int:conversation_id>/",
        views.console_conversation,
        name="console-conversation",
    ),
    path(
        "conversations/<int:conversation_id>/take-over/",
        views.console_take_over,
        name="console-take-over",
    ),
    path(
        "conversations/<int:conversation_id>/hand-back/",
        views.console_hand_back,
        name="console-hand-back",
    ),
    path(
        "conversations/<int:conversation_id>/reply/",
        views.console_reply,
        name="console-reply",
    ),
    path("history/", views.history, name="console-history"),
    path(
        "history/<int:conversation_id>/",
        views.history_conversation,
        name="console-history-conversation",
    ),
    path("history/export.<str:fmt>", views.history_export, name="console-history-export"),
    path("dashboard/", views.dashboard, name="console-dashboard"),
]
