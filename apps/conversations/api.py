from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from apps.conversations.selectors import conversation_list, message_list
from apps.conversations.serializers import ConversationSerializer, MessageSerializer


@extend_schema(
    parameters=[
        OpenApiParameter("bot", str, description="Only this bot's conversations (bot id)."),
        OpenApiParameter("platform", str, description="web, telegram or feishu."),
    ]
)
class ConversationViewSet(viewsets.ReadOnlyModelViewSet):
    """Conversations, newest activity first, and their messages."""

    serializer_class = ConversationSerializer

    def get_queryset(self):
        return conversation_list(
            bot_id=self.request.query_params.get("bot"),
            platform=self.request.query_params.get("platform"),
        )

    @extend_schema(responses=MessageSerializer(many=True))
    @action(detail=True)
    def messages(self, request, pk=None):
        conversation = self.get_object()
        page = self.paginate_queryset(message_list(conversation_id=conversation.pk))
        return self.get_paginated_response(MessageSerializer(page, many=True).data)
