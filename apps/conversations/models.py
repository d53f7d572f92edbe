from django.db import models
from django.utils import timezone

from apps.conversations.choices import Author, ChatType, Direction, MessageStatus


class Conversation(models.Model):
    """One chat on one bot: a private chat with a user, or a group."""

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="conversations")
    chat_id = models.CharField(max_length=128, help_text="The platform's chat id.")
    chat_type = models.CharField(max_length=16, choices=ChatType.choices)
    participants = models.JSONField(
        default=dict, blank=True, help_text="Platform user id -> display name."
    )
    started_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bot", "chat_id"], name="conversation_unique_chat")
        ]
        ordering = ["-last_activity_at"]

    def __str__(self) -> str:
        names = ", ".join(self.participants.values()) or self.chat_id
        return f"{names} on {self.bot.name}"


class Message(models.Model):
    """One message in a conversation, inbound or outbound, with its pipeline state."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    # Denormalised from the conversation so inbound ids are unique per bot.
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="+")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    author = models.CharField(max_length=16, choices=Author.choices)
    sender_id = models.CharField(max_length=128, blank=True)
    text = models.TextField(blank=True)
    # NULL, not "", for outbound rows: the unique constraint must ignore them.
    external_id = models.CharField(  # noqa: DJ001
        max_length=128,
        null=True,
        blank=True,
        help_text="Inbound: the platform's event/update id (dedup key).",
    )
    platform_message_id = models.CharField(
        max_length=128, blank=True, help_text="The platform's id of this message."
    )
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.RECEIVED
    )
    error = models.TextField(blank=True)
    delivery_attempts = models.PositiveIntegerField(default=0)
    profile = models.ForeignKey(
        "providers.ModelProfile",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The profile that produced this answer.",
    )
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    tokens_estimated = models.BooleanField(default=False)
    received_at = models.DateTimeField(default=timezone.now)
    model_started_at = models.DateTimeField(null=True, blank=True)
    first_token_at = models.DateTimeField(null=True, blank=True)
    model_done_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "external_id"],
                condition=models.Q(direction="in", external_id__isnull=False),
                name="message_unique_inbound_external_id",
            )
        ]
        indexes = [models.Index(fields=["status", "direction"])]

    def __str__(self) -> str:
        return f"{self.get_author_display()}: {self.text[:60]}"
