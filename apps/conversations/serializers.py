from rest_framework import serializers

from apps.conversations.models import Conversation, Message


class ConversationSerializer(serializers.ModelSerializer):
    platform = serializers.CharField(source="bot.platform", read_only=True)

    class Meta:
        model = Conversation
        fields = [
            "id",
            "bot",
            "platform",
            "chat_id",
            "chat_type",
            "participants",
            "started_at",
            "last_activity_at",
        ]


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id",
            "conversation",
            "direction",
            "author",
            "sender_id",
            "text",
            "external_id",
            "platform_message_id",
            "reply_to",
            "status",
            "error",
            "delivery_attempts",
            "profile",
            "routing_rule",
            "decision",
            "prompt_tokens",
            "completion_tokens",
            "tokens_estimated",
            "received_at",
            "model_started_at",
            "first_token_at",
            "model_done_at",
            "delivered_at",
        ]
