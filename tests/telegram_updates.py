"""Telegram Updates built from python-telegram-bot objects, serialized as Telegram sends them."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

from telegram import Chat, Message, Update, User

_update_ids = itertools.count(500000)
_message_ids = itertools.count(10)


def private_text_update(
    text: str, *, user_id: int = 4242, first_name: str = "Ada", update_id: int | None = None
) -> dict:
    user = User(id=user_id, is_bot=False, first_name=first_name, last_name="Lovelace")
    message = Message(
        message_id=next(_message_ids),
        date=datetime.now(UTC),
        chat=Chat(id=user_id, type=Chat.PRIVATE, first_name=first_name),
        from_user=user,
        text=text,
    )
    update = Update(update_id=update_id or next(_update_ids), message=message)
    return update.to_dict()


def post_update(client, bot, update: dict, *, secret: str | None = None):
    return client.post(
        f"/api/webhooks/telegram/{bot.pk}/",
        data=json.dumps(update),
        content_type="application/json",
        headers={
            "X-Telegram-Bot-Api-Secret-Token": bot.telegram_webhook_secret
            if secret is None
            else secret
        },
    )
