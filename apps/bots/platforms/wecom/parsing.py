"""Reading WeCom callbacks: the XML envelope and the message inside (接收消息与事件)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree  # noqa: S405 - DTDs refused below

from apps.bots.platforms.base import (
    EventNotUnderstood,
    InboundAttachment,
    InboundMessage,
    WebhookRejected,
)

COMMANDS = {"start", "help", "reset", "model"}
# Kinds the bot cannot use yet: answered with a notice, never dropped.
UNSUPPORTED_KINDS = ("video", "link")


def xml_fields(body: bytes) -> dict[str, str]:
    """The child elements of a WeCom <xml> document as {tag: text}.

    WeCom never sends a DTD: one is refused, so no entity can expand or be fetched.
    """
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise WebhookRejected("XML with a DTD is refused", status=400)
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - no DTD, see above
    except ElementTree.ParseError as error:
        raise WebhookRejected(f"body is not XML we can read: {error}", status=400) from error
    return {child.tag: (child.text or "").strip() for child in root}


def message_parse(fields: dict[str, str]) -> InboundMessage | None:
    """One decrypted message as an InboundMessage (None for events we do not answer)."""
    kind = fields.get("MsgType", "")
    if kind == "event":
        return None  # entering the app, menu clicks…: nothing to answer
    sender = fields.get("FromUserName", "")
    message_id = fields.get("MsgId", "")
    if not sender or not message_id:
        raise EventNotUnderstood("a message without FromUserName or MsgId")
    text = ""
    unsupported = ""
    attachments: tuple[InboundAttachment, ...] = ()
    media_id = fields.get("MediaId", "")
    if kind == "text":
        text = fields.get("Content", "")
    elif kind == "image" and media_id:
        attachments = (InboundAttachment(kind="image", platform_file_id=media_id),)
    elif kind == "voice" and media_id:
        voice_format = fields.get("Format", "amr").lower() or "amr"
        attachments = (
            InboundAttachment(
                kind="audio",
                platform_file_id=media_id,
                mime_type=f"audio/{voice_format}",
                file_name=f"voice.{voice_format}",
            ),
        )
    elif kind == "file" and media_id:
        attachments = (
            InboundAttachment(
                kind="file", platform_file_id=media_id, file_name=fields.get("FileName", "")
            ),
        )
    elif kind == "location":
        label = fields.get("Label", "")
        where = f"({fields.get('Location_X', '')}, {fields.get('Location_Y', '')})"
        text = f"📍 {label} {where}".replace("  ", " ")
    elif kind:
        text, unsupported = f"[{kind}]", kind
    else:
        raise EventNotUnderstood("a message without MsgType")
    text = text.strip()
    command = ""
    if text.startswith("/") and len(text) > 1:
        word = text[1:].split(maxsplit=1)[0].lower()
        command = word if word in COMMANDS else ""
    return InboundMessage(
        external_id=message_id,
        chat_id=sender,  # a self-built app's messages are one member's chat with the app
        chat_type="private",
        sender_id=sender,
        sender_name="",
        text=text,
        platform_message_id=message_id,
        command=command,
        attachments=attachments,
        unsupported=unsupported,
    )
