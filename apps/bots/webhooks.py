"""Webhook endpoints: verify, parse, ingest, answer 200 in milliseconds."""

from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.bots.choices import Platform
from apps.bots.platforms import feishu
from apps.bots.platforms.base import WebhookRejected
from apps.bots.services import webhook_receive


class TelegramWebhookView(APIView):
    """POST /api/webhooks/telegram/<bot id>/: one Telegram Update."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    schema = None  # called by Telegram, not part of the management API

    def post(self, request, bot_id):
        try:
            stored = webhook_receive(
                bot_id=bot_id,
                platform=Platform.TELEGRAM,
                headers=dict(request.headers),
                body=request.body,
            )
        except WebhookRejected as error:
            return Response({"ok": False, "error": str(error)}, status=error.status)
        return Response({"ok": True, "stored": stored})


class FeishuWebhookView(APIView):
    """POST /api/webhooks/feishu/<bot id>/: one Feishu/Lark event or card callback.

    Answers the URL check's challenge and card callbacks' toasts in the response body.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    schema = None  # called by Feishu, not part of the management API

    def post(self, request, bot_id):
        with feishu.webhook_reply() as reply:
            try:
                webhook_receive(
                    bot_id=bot_id,
                    platform=Platform.FEISHU,
                    headers=dict(request.headers),
                    body=request.body,
                )
            except WebhookRejected as error:
                return Response({"msg": str(error)}, status=error.status)
        return Response(reply.body())
