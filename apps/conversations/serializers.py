from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
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


class ToolCallSerializer(serializers.Serializer):
    """One tool call the model made for an answer (the shape of `Message.tool_calls`)."""

    step = serializers.IntegerField(help_text=_("Which round of tool calls (1, 2, …)."))
    profile = serializers.CharField(help_text=_("The model profile that asked for it."))
    id = serializers.CharField(help_text=_("The call's id, as the model gave it."))
    name = serializers.CharField(help_text=_("The function name the model called."))
    arguments = serializers.CharField(help_text=_("The arguments (JSON text, shortened)."))
    result = serializers.CharField(help_text=_("What the tool answered (shortened)."))
    error = serializers.CharField(help_text=_("Why it failed or was not run; empty if it worked."))
    ms = serializers.IntegerField(help_text=_("How long it took, in milliseconds."))
    skill = serializers.CharField(required=False, help_text=_("The skill that ran it."))
    skill_instance_id = serializers.IntegerField(
        required=False, help_text=_("The bot's configured skill that ran it.")
    )
    skill_instance = serializers.CharField(
        required=False, help_text=_("That configured skill's name.")
    )


@extend_schema_field(ToolCallSerializer(many=True))
class ToolCallsField(serializers.JSONField):
    """Message.tool_calls as stored (a skill may add details, e.g. its HTTP attempts)."""


class MessageSerializer(serializers.ModelSerializer):
    tool_calls = ToolCallsField(read_only=True)

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
            "tool_calls",
            "prompt_tokens",
            "completion_tokens",
            "tokens_estimated",
            "received_at",
            "model_started_at",
            "first_token_at",
            "model_done_at",
            "delivered_at",
        ]
