from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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

    bot = models.ForeignKey(
        "bots.Bot",
        on_delete=models.CASCADE,
        related_name="conversations",
        verbose_name=_("bot"),
        db_index=False,  # `conversation_bot_chat` leads with it
    )
    chat_id = models.CharField(
        max_length=128, help_text=_("The platform's chat id."), verbose_name=_("chat ID")
    )
    chat_type = models.CharField(
        max_length=16, choices=ChatType.choices, verbose_name=_("chat type")
    )
    participants = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("Platform user id -> display name."),
        verbose_name=_("participants"),
    )
    started_at = models.DateTimeField(default=timezone.now, verbose_name=_("started at"))
    last_activity_at = models.DateTimeField(
        default=timezone.now, db_index=True, verbose_name=_("last activity at")
    )
    closed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("Set by /reset: the chat's next message starts anew."),
        verbose_name=_("closed at"),
    )
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The staff member who took the conversation over; the AI is silent meanwhile."),
        verbose_name=_("handled by"),
    )
    taken_over_at = models.DateTimeField(null=True, blank=True, verbose_name=_("taken over at"))
    summary = models.TextField(
        blank=True,
        help_text=_("A model-written summary of the turns before `summary_until`."),
        verbose_name=_("summary"),
    )
    summary_until = models.BigIntegerField(
        null=True,
        blank=True,
        help_text=_("The id of the last message the summary covers."),
        verbose_name=_("summary until"),
    )

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "chat_id"],
                condition=models.Q(closed_at__isnull=True),
                name="conversation_unique_open_chat",
            )
        ]
        indexes = [
            # Finding a chat's conversation on every inbound message must not depend on
            # the planner's statistics: with none yet (a new install under its first
            # burst), a bot_id-only index was chosen and every lookup read all the bot's
            # conversations.
            models.Index(fields=["bot", "chat_id"], name="conversation_bot_chat"),
            # The console's "waiting for staff" badge on every page: handed off, not taken.
            models.Index(
                fields=["taken_over_at"],
                condition=models.Q(
                    handled_by__isnull=True, taken_over_at__isnull=False, closed_at__isnull=True
                ),
                name="conversation_waiting_for_staff",
            ),
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
        Conversation,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("conversation"),
        db_index=False,  # `message_turn_lookup` leads with it
    )
    # Denormalised from the conversation so inbound ids are unique per bot.
    bot = models.ForeignKey(
        "bots.Bot", on_delete=models.CASCADE, related_name="+", verbose_name=_("bot")
    )
    direction = models.CharField(
        max_length=3, choices=Direction.choices, verbose_name=_("direction")
    )
    author = models.CharField(max_length=16, choices=Author.choices, verbose_name=_("author"))
    sender_id = models.CharField(max_length=128, blank=True, verbose_name=_("sender ID"))
    text = models.TextField(blank=True, verbose_name=_("text"))
    # NULL, not "", for outbound rows: the unique constraint must ignore them.
    external_id = models.CharField(  # noqa: DJ001
        max_length=128,
        null=True,
        blank=True,
        help_text=_("Inbound: the platform's event/update id (dedup key)."),
        verbose_name=_("external ID"),
    )
    platform_message_id = models.CharField(
        max_length=128,
        blank=True,
        help_text=_("The platform's id of this message."),
        verbose_name=_("platform message ID"),
    )
    reply_to = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("reply to"),
    )
    status = models.CharField(
        max_length=16,
        choices=MessageStatus.choices,
        default=MessageStatus.RECEIVED,
        verbose_name=_("status"),
    )
    error = models.TextField(blank=True, verbose_name=_("error"))
    delivery_attempts = models.PositiveIntegerField(default=0, verbose_name=_("delivery attempts"))
    profile = models.ForeignKey(
        "providers.ModelProfile",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The profile that produced this answer."),
        verbose_name=_("profile"),
    )
    prompt_tokens = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("prompt tokens")
    )
    completion_tokens = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("completion tokens")
    )
    tokens_estimated = models.BooleanField(default=False, verbose_name=_("tokens estimated"))
    received_at = models.DateTimeField(default=timezone.now, verbose_name=_("received at"))
    model_started_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("model started at")
    )
    first_token_at = models.DateTimeField(null=True, blank=True, verbose_name=_("first token at"))
    model_done_at = models.DateTimeField(null=True, blank=True, verbose_name=_("model done at"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    attempts = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Profiles tried for this answer, in order, with why each was skipped."),
        verbose_name=_("attempts"),
    )
    tool_calls = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            "Tools the model called for this answer, in order: name, arguments, result "
            "(shortened), error and duration."
        ),
        verbose_name=_("tool calls"),
    )
    cached = models.BooleanField(
        default=False, help_text=_("Answered from the response cache."), verbose_name=_("cached")
    )
    cost = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text=_("In the profile's currency."),
        verbose_name=_("cost"),
    )
    routing_rule = models.ForeignKey(
        "routing.RoutingRule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The routing rule that decided how this was answered (none: the default)."),
        verbose_name=_("routing rule"),
    )
    decision = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("The routing decision: action, rule, variant and reason."),
        verbose_name=_("routing decision"),
    )

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "external_id"],
                condition=models.Q(direction="in", external_id__isnull=False),
                name="message_unique_inbound_external_id",
            )
        ]
        indexes = [
            models.Index(fields=["status", "direction"]),
            # A turn's claim and its "anything new?" checks read one conversation's
            # waiting messages; with the (status, direction) index alone they read every
            # waiting message of every conversation (hundreds in a burst).
            models.Index(
                fields=["conversation", "direction", "status"], name="message_turn_lookup"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_author_display()}: {self.text[:60]}"


class MessageAttachment(models.Model):
    """A photo, voice note or file a user sent; fetched from the platform by the worker."""

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="attachments", verbose_name=_("message")
    )
    kind = models.CharField(max_length=16, choices=AttachmentKind.choices, verbose_name=_("kind"))
    platform_file_id = models.CharField(
        max_length=512,
        help_text=_("The platform's file key/id."),
        verbose_name=_("platform file ID"),
    )
    mime_type = models.CharField(max_length=100, blank=True, verbose_name=_("MIME type"))
    file_name = models.CharField(max_length=255, blank=True, verbose_name=_("file name"))
    size = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("size"))
    content = models.FileField(
        upload_to="attachments/%Y/%m/%d/", blank=True, verbose_name=_("content")
    )
    error = models.TextField(blank=True, verbose_name=_("error"))

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return f"{self.kind} {self.file_name or self.platform_file_id}"


class Feedback(models.Model):
    """A user's rating of one answer (helpful / not helpful); the latest one counts."""

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="feedback", verbose_name=_("message")
    )
    rating = models.CharField(max_length=16, choices=Rating.choices, verbose_name=_("rating"))
    platform_user_id = models.CharField(max_length=128, verbose_name=_("platform user ID"))
    created_at = models.DateTimeField(auto_now=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        constraints = [
            models.UniqueConstraint(
                fields=["message", "platform_user_id"], name="feedback_one_per_user"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_rating_display()} on message {self.message_id}"
