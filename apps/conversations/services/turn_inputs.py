"""What a turn's pending messages give the model: their text, images, the words of voice
messages and of videos' sound, key frames of videos; and the reply when none of it can be
understood. Media is downloaded once (kept in `MessageAttachment.content`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy

from apps.bots.platforms.base import InboundAttachment, PlatformAdapter
from apps.conversations.choices import AttachmentKind
from apps.conversations.models import Message, MessageAttachment
from apps.conversations.services.media import VideoUnreadable, video_key_frames, video_sound
from apps.providers.client import ModelError, image_part, text_part, transcribe
from apps.providers.models import ModelProfile

logger = logging.getLogger(__name__)

NO_IMAGES_REPLY = gettext_lazy(
    "Sorry, I can't look at images here. Please describe what you need in words."
)
NO_VOICE_REPLY = gettext_lazy(
    "Sorry, I can't listen to voice messages here. Please write your question instead."
)
UNREADABLE_REPLY = gettext_lazy(
    "Sorry, I couldn't read what you sent. Please write your question as text."
)
NO_VIDEO_REPLY = gettext_lazy(
    "Sorry, I can't watch videos here. Please describe what you need in words."
)
TOO_LARGE_REPLY = gettext_lazy(
    "Sorry, that is too large for me: here I can download files of at most {megabytes} MB. "
    "Please send a smaller one, or write your question as text."
)
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # unless the platform's adapter says otherwise


@dataclass
class TurnInput:
    """One pending user message as the model will see it."""

    message: Message
    text: str
    images: list[tuple[bytes, str]] = field(default_factory=list)
    voice_unsupported: bool = False
    video_unsupported: bool = False
    unreadable: bool = False
    too_large: int = 0  # the platform's download limit a file exceeded, in bytes

    def content_for(self, profile: ModelProfile) -> str | list[dict]:
        text = self.text
        notes = []
        if self.images and not profile.accepts_images:
            notes.append("[The user sent an image, which you cannot see.]")
        if self.voice_unsupported:
            notes.append("[The user sent a voice message, which you cannot hear.]")
        if self.video_unsupported:
            notes.append("[The user sent a video, which you cannot watch.]")
        if self.too_large:
            megabytes = self.too_large // (1024 * 1024)
            notes.append(f"[The user sent a file too large to download (over {megabytes} MB).]")
        if self.unreadable:
            notes.append("[The user sent a file that could not be read.]")
        text = "\n".join([part for part in [text, *notes] if part])
        if self.images and profile.accepts_images:
            parts = [text_part(text)] if text else []
            return parts + [image_part(data, mime) for data, mime in self.images]
        return text

    def understood_by(self, profile: ModelProfile) -> bool:
        return bool(self.text) or bool(self.images and profile.accepts_images)


def turn_input_read(adapter: PlatformAdapter, message: Message, profile: ModelProfile) -> TurnInput:
    """Download a message's media (once; bytes kept in MessageAttachment.content) and read it."""
    item = TurnInput(message=message, text=message.text)
    transcripts: list[str] = []
    if not getattr(message, "has_attachments", True):
        return item  # most messages are text only: no query for their attachments
    limit = getattr(adapter, "download_limit_bytes", MAX_DOWNLOAD_BYTES)
    for attachment in message.attachments.all():
        if not attachment.content and attachment.size and attachment.size > limit:
            attachment.error = f"too large to download (over {limit // (1024 * 1024)} MB)"
            attachment.save(update_fields=["error"])
            item.too_large = limit
            continue
        data = _attachment_bytes(adapter, message, attachment)
        if data is None:
            item.unreadable = True
            continue
        if attachment.kind == AttachmentKind.IMAGE:
            item.images.append((data, attachment.mime_type or "image/jpeg"))
        elif attachment.kind == AttachmentKind.AUDIO:
            if not profile.transcription_model:
                item.voice_unsupported = True
                continue
            try:
                transcripts.append(
                    transcribe(
                        profile=profile,
                        audio=data,
                        file_name=attachment.file_name or "voice.ogg",
                        mime_type=attachment.mime_type,
                    )
                )
            except ModelError as error:
                logger.warning("transcription of attachment %s failed: %s", attachment.pk, error)
                MessageAttachment.objects.filter(pk=attachment.pk).update(
                    error=f"transcription failed: {error}"
                )
                item.unreadable = True
        elif attachment.kind == AttachmentKind.VIDEO:
            _read_video(item, attachment, data, profile, transcripts)
        else:
            item.unreadable = True
    if transcripts:
        item.text = "\n".join([part for part in [item.text, *transcripts] if part])
    return item


def _read_video(
    item: TurnInput,
    attachment: MessageAttachment,
    data: bytes,
    profile: ModelProfile,
    transcripts: list[str],
) -> None:
    """A video as its key frames (for a profile that sees images) and its sound track's
    words (for one that transcribes); the caption is the message's text already."""
    understood = False
    try:
        if profile.accepts_images:
            item.images.extend((frame, "image/jpeg") for frame in video_key_frames(data))
            understood = True
        sound = video_sound(data) if profile.transcription_model else None
    except VideoUnreadable as error:
        logger.warning("video attachment %s: %s", attachment.pk, error)
        attachment.error = f"video not readable: {error}"
        attachment.save(update_fields=["error"])
        item.unreadable = not understood
        return
    if sound is not None:
        try:
            transcripts.append(
                transcribe(
                    profile=profile, audio=sound, file_name="sound.ogg", mime_type="audio/ogg"
                )
            )
            understood = True
        except ModelError as error:
            logger.warning("transcription of video %s failed: %s", attachment.pk, error)
            attachment.error = f"transcription failed: {error}"
            attachment.save(update_fields=["error"])
    item.video_unsupported = not understood


def _attachment_bytes(
    adapter: PlatformAdapter, message: Message, attachment: MessageAttachment
) -> bytes | None:
    if attachment.content:
        with attachment.content.open("rb") as stored:
            return stored.read()
    try:
        data = adapter.download(
            message_platform_id=message.platform_message_id,
            attachment=InboundAttachment(
                kind=attachment.kind,
                platform_file_id=attachment.platform_file_id,
                mime_type=attachment.mime_type,
                file_name=attachment.file_name,
                size=attachment.size,
            ),
        )
    except Exception as error:  # noqa: BLE001 - any platform failure: answer without the file
        logger.warning("download of attachment %s failed: %s", attachment.pk, error)
        attachment.error = f"download failed: {error}"
        attachment.save(update_fields=["error"])
        return None
    name = attachment.file_name or f"{attachment.kind}-{attachment.pk}"
    attachment.content.save(name, ContentFile(data), save=False)
    attachment.size = len(data)
    attachment.error = ""
    attachment.save(update_fields=["content", "size", "error"])
    return data


def unsupported_reply(inputs: list[TurnInput]) -> str | Promise:
    if any(item.images for item in inputs):
        return NO_IMAGES_REPLY
    if any(item.video_unsupported for item in inputs):
        return NO_VIDEO_REPLY
    if any(item.voice_unsupported for item in inputs):
        return NO_VOICE_REPLY
    limit = max(item.too_large for item in inputs)
    if limit:
        return format_lazy(TOO_LARGE_REPLY, megabytes=limit // (1024 * 1024))
    return UNREADABLE_REPLY
