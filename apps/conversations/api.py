from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.audit.services import client_ip
from apps.conversations.selectors import conversation_list, conversation_summary, message_list
from apps.conversations.serializers import ConversationSerializer, MessageSerializer
from apps.conversations.services.console import (
    ConsoleError,
    conversation_hand_back,
    conversation_take_over,
    staff_reply_send,
)
from apps.conversations.services.turns import MessageNotRetryable, message_retry
from apps.core.schema import ErrorDetailSerializer


@extend_schema(
    parameters=[
        OpenApiParameter("bot", str, description="Only this bot's conversations (bot id)."),
        OpenApiParameter("platform", str, description="web, telegram or feishu."),
    ]
)
class ConversationViewSet(viewsets.ReadOnlyModelViewSet):
    """Conversations, newest activity first, and their messages."""

    serializer_class = ConversationSerializer
    # Reads need view_conversation (apps.core.permissions); these actions need more.
    action_permissions = {
        "messages": ["conversations.view_conversation", "conversations.view_message"],
        "retry": ["conversations.view_conversation", "conversations.change_message"],
        "take_over": ["conversations.takeover_conversation"],
        "hand_back": ["conversations.takeover_conversation"],
        "reply": ["conversations.takeover_conversation"],
    }

    def get_queryset(self):
        bot_id = self.request.query_params.get("bot") or None
        if bot_id is not None:  # a malformed id is a 400, not a database error
            try:
                bot_id = serializers.UUIDField().run_validation(bot_id)
            except serializers.ValidationError as error:
                raise serializers.ValidationError({"bot": error.detail}) from error
        return conversation_list(bot_id=bot_id, platform=self.request.query_params.get("platform"))

    @extend_schema(responses=MessageSerializer(many=True))
    @action(detail=True)
    def messages(self, request, pk=None):
        conversation = self.get_object()
        page = self.paginate_queryset(message_list(conversation_id=conversation.pk))
        return self.get_paginated_response(MessageSerializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses={202: MessageSerializer, 409: ErrorDetailSerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"messages/(?P<message_id>\d+)/retry",
        url_name="message-retry",
    )
    def retry(self, request, pk=None, message_id=None):
        """Try a failed message again (a failed answer, user message or delivery)."""
        conversation = self.get_object()
        if not conversation.messages.filter(pk=message_id).exists():
            return Response({"detail": _("No such message.")}, status=status.HTTP_404_NOT_FOUND)
        try:
            message = message_retry(message_id=int(message_id))
        except MessageNotRetryable as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(MessageSerializer(message).data, status=status.HTTP_202_ACCEPTED)

    def _takeover_allowed(self, request) -> Response | None:
        if not request.user.has_perm("conversations.takeover_conversation"):
            return Response(
                {"detail": _("Taking conversations over needs the takeover permission.")},
                status=status.HTTP_403_FORBIDDEN,
            )
        return None

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"], url_path="take-over", url_name="take-over")
    def take_over(self, request, pk=None):
        """Stop the AI answering this conversation; the caller answers it (audited)."""
        conversation = self.get_object()
        if refused := self._takeover_allowed(request):
            return refused
        conversation_take_over(
            conversation_id=conversation.pk, actor=request.user, ip_address=client_ip(request)
        )
        return Response(conversation_summary(conversation_id=conversation.pk))

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"], url_path="hand-back", url_name="hand-back")
    def hand_back(self, request, pk=None):
        """Let the AI answer this conversation again (audited)."""
        conversation = self.get_object()
        if refused := self._takeover_allowed(request):
            return refused
        conversation_hand_back(
            conversation_id=conversation.pk, actor=request.user, ip_address=client_ip(request)
        )
        return Response(conversation_summary(conversation_id=conversation.pk))

    @extend_schema(
        request={"application/json": {"type": "object"}},
        responses={202: MessageSerializer, 409: ErrorDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def reply(self, request, pk=None):
        """Reply as staff in a taken-over conversation: {"text": "..."}; delivered by the worker."""
        conversation = self.get_object()
        if refused := self._takeover_allowed(request):
            return refused
        text = request.data.get("text")
        try:
            message = staff_reply_send(
                conversation_id=conversation.pk,
                actor=request.user,
                text=text if isinstance(text, str) else "",
                ip_address=client_ip(request),
            )
        except ConsoleError as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(MessageSerializer(message).data, status=status.HTTP_202_ACCEPTED)
