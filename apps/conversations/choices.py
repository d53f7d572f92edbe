from django.db import models


class ChatType(models.TextChoices):
    PRIVATE = "private", "Private"
    GROUP = "group", "Group"


class Direction(models.TextChoices):
    IN = "in", "Inbound"
    OUT = "out", "Outbound"


class Author(models.TextChoices):
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"
    STAFF = "staff", "Staff"
    SYSTEM = "system", "System"


class MessageStatus(models.TextChoices):
    RECEIVED = "received", "Received"  # inbound, stored, waiting for a turn
    PROCESSING = "processing", "Processing"  # a turn is answering it / generating it
    ANSWERED = "answered", "Answered"  # inbound answered; outbound generated, not yet sent
    DELIVERED = "delivered", "Delivered"  # outbound sent to the platform
    FAILED = "failed", "Failed"  # see `error`
    SKIPPED = "skipped", "Not answered (staff took over)"


class Rating(models.TextChoices):
    HELPFUL = "helpful", "Helpful"
    NOT_HELPFUL = "not_helpful", "Not helpful"


class AttachmentKind(models.TextChoices):
    IMAGE = "image", "Image"
    AUDIO = "audio", "Audio"
    FILE = "file", "File"
