from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.conversations.choices import (
    AttachmentKind,
    Author,
    ChatType,
    Direction,
    MessageStatus,
    Rating,
)


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
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text="Set by /reset: the chat's next message starts anew."
    )
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The staff member who took the conversation over; the AI is silent meanwhile.",
    )
    taken_over_at = models.DateTimeField(null=True, blank=True)
    summary = models.TextField(
        blank=True, help_text="A model-written summary of the turns before `summary_until`."
    )
    summary_until = models.BigIntegerField(
        null=True, blank=True, help_text="The id of the last message the summary covers."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "chat_id"],
                condition=models.Q(closed_at__isnull=True),
                name="conversation_unique_open_chat",
            )
        ]
        ordering = ["-last_activity_at"]
        permissions = [
            ("takeover_conversation", "Can take over a conversation and reply as staff"),
        ]

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
    attempts = models.JSONField(
        default=list,
        blank=True,
        help_text="Profiles tried for this answer, in order, with why each was skipped.",
    )
    cached = models.BooleanField(default=False, help_text="Answered from the response cache.")
    cost = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="In the profile's currency.",
    )

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


class MessageAttachment(models.Model):
    """A photo, voice note or file a user sent; fetched from the platform by the worker."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    kind = models.CharField(max_length=16, choices=AttachmentKind.choices)
    platform_file_id = models.CharField(max_length=512, help_text="The platform's file key/id.")
    mime_type = models.CharField(max_length=100, blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    size = models.PositiveIntegerField(null=True, blank=True)
    content = models.FileField(upload_to="attachments/%Y/%m/%d/", blank=True)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.file_name or self.platform_file_id}"


class Feedback(models.Model):
    """A user's rating of one answer (helpful / not helpful); the latest one counts."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="feedback")
    rating = models.CharField(max_length=16, choices=Rating.choices)
    platform_user_id = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "platform_user_id"], name="feedback_one_per_user"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_rating_display()} on message {self.message_id}"
