from django.db import models
from django.utils.translation import gettext_lazy as _


class ChatType(models.TextChoices):
    PRIVATE = "private", _("Private")
    GROUP = "group", _("Group")


class Direction(models.TextChoices):
    IN = "in", _("Inbound")
    OUT = "out", _("Outbound")


class Author(models.TextChoices):
    USER = "user", _("User")
    ASSISTANT = "assistant", _("Assistant")
    STAFF = "staff", _("Staff")
    SYSTEM = "system", _("System")


class MessageStatus(models.TextChoices):
    RECEIVED = "received", _("Received")  # inbound, stored, waiting for a turn
    PROCESSING = "processing", _("Processing")  # a turn is answering it / generating it
    ANSWERED = "answered", _("Answered")  # inbound answered; outbound generated, not yet sent
    DELIVERED = "delivered", _("Delivered")  # outbound sent to the platform
    FAILED = "failed", _("Failed")  # see `error`
    SKIPPED = "skipped", _("Not answered (staff took over)")
    INTERRUPTED = "interrupted", _("Interrupted (the user wrote again)")  # outbound, partial


class Rating(models.TextChoices):
    HELPFUL = "helpful", _("Helpful")
    NOT_HELPFUL = "not_helpful", _("Not helpful")


class AttachmentKind(models.TextChoices):
    IMAGE = "image", _("Image")
    AUDIO = "audio", _("Audio")
    VIDEO = "video", _("Video")
    FILE = "file", _("File")
