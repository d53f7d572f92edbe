"""Telegram Updates built from python-telegram-bot objects, serialized as Telegram sends them."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

from telegram import (
    CallbackQuery,
    Chat,
    Document,
    Message,
    MessageEntity,
    PhotoSize,
    Update,
    User,
    Voice,
)

_update_ids = itertools.count(500000)
_message_ids = itertools.count(10)

BOT_ID = 123456  # the id in the test token "123456:TEST-token"
BOT_USERNAME = "assistant_test_bot"
GROUP_ID = -100777


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def user(user_id: int = 4242, first_name: str = "Ada") -> User:
    return User(id=user_id, is_bot=False, first_name=first_name, last_name="Lovelace")


def bot_user() -> User:
    return User(id=BOT_ID, is_bot=True, first_name="Assistant", username=BOT_USERNAME)


def _chat(chat_id: int, *, group: bool, first_name: str = "Ada") -> Chat:
    if group:
        return Chat(id=chat_id, type=Chat.SUPERGROUP, title="Team")
    return Chat(id=chat_id, type=Chat.PRIVATE, first_name=first_name)


def entities_for(text: str, *parts: tuple[str, str]) -> list[MessageEntity]:
    """Entities of `type` over each `fragment` of text, with UTF-16 offsets like Telegram's."""
    found = []
    for entity_type, fragment in parts:
        index = text.index(fragment)
        found.append(
            MessageEntity(
                type=entity_type,
                offset=_utf16_len(text[:index]),
                length=_utf16_len(fragment),
                user=bot_user() if entity_type == MessageEntity.TEXT_MENTION else None,
            )
        )
    return found


def message(
    text: str | None = None,
    *,
    user_id: int = 4242,
    first_name: str = "Ada",
    group: bool = False,
    chat_id: int | None = None,
    entities: list[MessageEntity] | None = None,
    reply_to: Message | None = None,
    message_id: int | None = None,
    **media,
) -> Message:
    sender = user(user_id, first_name)
    chat = _chat(chat_id or (GROUP_ID if group else user_id), group=group, first_name=first_name)
    if entities is None and text and text.startswith("/"):
        command = text.split()[0]
        entities = entities_for(text, (MessageEntity.BOT_COMMAND, command))
    return Message(
        message_id=message_id or next(_message_ids),
        date=datetime.now(UTC),
        chat=chat,
        from_user=sender,
        text=text if not media else None,
        caption=text if media else None,
        entities=entities if not media else None,
        caption_entities=entities if media else None,
        reply_to_message=reply_to,
        **media,
    )


def update_of(msg: Message, *, edited: bool = False, update_id: int | None = None) -> dict:
    fields = {"edited_message": msg} if edited else {"message": msg}
    return Update(update_id=update_id or next(_update_ids), **fields).to_dict()


def private_text_update(
    text: str, *, user_id: int = 4242, first_name: str = "Ada", update_id: int | None = None
) -> dict:
    return update_of(message(text, user_id=user_id, first_name=first_name), update_id=update_id)


def group_text_update(text: str, *, mention: bool = False, **kwargs) -> dict:
    """A supergroup message; with mention=True the "@assistant_test_bot" in it is an entity."""
    entities = None
    if mention:
        entities = entities_for(text, (MessageEntity.MENTION, f"@{BOT_USERNAME}"))
    return update_of(message(text, group=True, entities=entities, **kwargs))


def bot_message(text: str, *, chat_id: int, message_id: int) -> Message:
    """One of the bot's own messages (what a user replies to)."""
    return Message(
        message_id=message_id,
        date=datetime.now(UTC),
        chat=_chat(chat_id, group=chat_id < 0),
        from_user=bot_user(),
        text=text,
    )


def photo_update(caption: str = "", *, file_id: str = "photo-large", **kwargs) -> dict:
    sizes = (
        PhotoSize(file_id="photo-small", file_unique_id="ps", width=90, height=90, file_size=10),
        PhotoSize(file_id=file_id, file_unique_id="pl", width=1280, height=960, file_size=2048),
    )
    return update_of(message(caption or None, photo=sizes, **kwargs))


def voice_update(*, file_id: str = "voice-1", **kwargs) -> dict:
    voice = Voice(
        file_id=file_id, file_unique_id="v1", duration=3, mime_type="audio/ogg", file_size=4000
    )
    return update_of(message(None, voice=voice, **kwargs))


def document_update(*, file_id: str = "doc-1", file_name: str = "report.pdf", **kwargs) -> dict:
    document = Document(
        file_id=file_id,
        file_unique_id="d1",
        file_name=file_name,
        mime_type="application/pdf",
        file_size=9000,
    )
    return update_of(message(None, document=document, **kwargs))


def callback_update(
    data: str, *, chat_id: int, message_id: int, user_id: int = 4242, query_id: str = "q1"
) -> dict:
    query = CallbackQuery(
        id=query_id,
        from_user=user(user_id),
        chat_instance="ci-1",
        data=data,
        message=bot_message("an answer", chat_id=chat_id, message_id=message_id),
    )
    return Update(update_id=next(_update_ids), callback_query=query).to_dict()


def migration_update(*, old_chat_id: int, new_chat_id: int) -> dict:
    msg = Message(
        message_id=next(_message_ids),
        date=datetime.now(UTC),
        chat=Chat(id=old_chat_id, type=Chat.GROUP, title="Team"),
        from_user=user(),
        migrate_to_chat_id=new_chat_id,
    )
    return update_of(msg)


def post_update(client, bot, update: dict, *, secret: str | None = None):
    return post_body(client, bot, json.dumps(update).encode(), secret=secret)


def post_body(client, bot, body: bytes, *, secret: str | None = None):
    """POST raw bytes to the bot's Telegram webhook, with its secret unless told otherwise."""
    return client.post(
        f"/api/webhooks/telegram/{bot.pk}/",
        data=body,
        content_type="application/json",
        headers={
            "X-Telegram-Bot-Api-Secret-Token": bot.config["webhook_secret"]
            if secret is None
            else secret
        },
    )
