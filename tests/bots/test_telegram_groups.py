"""Telegram groups, commands and edits: webhook -> real worker -> the fake Bot API."""

from __future__ import annotations

import pytest
from telegram import MessageEntity

from apps.bots.choices import EditedMessages
from apps.bots.services import bot_update
from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Conversation, Message
from apps.conversations.services.ingest import HELP_TEXT
from tests.fakes.server import wait_for
from tests.telegram_updates import (
    BOT_ID,
    GROUP_ID,
    bot_message,
    entities_for,
    group_text_update,
    message,
    migration_update,
    post_update,
    private_text_update,
    update_of,
)


def delivered(count: int = 1) -> list[Message]:
    return wait_for(
        lambda: (
            rows
            if len(
                rows := list(
                    Message.objects.filter(
                        direction=Direction.OUT, status=MessageStatus.DELIVERED
                    ).order_by("id")
                )
            )
            >= count
            else None
        )
    )


def test_group_message_without_mention_is_not_answered_but_a_mention_is_once(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    fake_openai.reply = "Four."
    quiet = group_text_update("we should order pizza")
    addressed = group_text_update("🙂 @assistant_test_bot what is 2+2?", mention=True)

    assert post_update(client, telegram_bot, quiet).json()["stored"] == 0
    assert post_update(client, telegram_bot, addressed).json()["stored"] == 1
    assert post_update(client, telegram_bot, addressed).json()["stored"] == 0  # retried

    [answer] = delivered()
    assert answer.text == "Four."
    # The model saw the text without the mention (UTF-16 offsets after an emoji).
    assert fake_openai.requests[0]["messages"][-1]["content"] == "🙂 what is 2+2?"
    assert len(fake_openai.requests) == 1
    [shown] = fake_telegram.chat(GROUP_ID)
    assert shown.text == "Four."
    assert shown.reply_to == addressed["message"]["message_id"]
    conversation = Conversation.objects.get()
    assert conversation.chat_type == "group" and conversation.chat_id == str(GROUP_ID)
    # The username was learned once with getMe and kept.
    telegram_bot.refresh_from_db()
    assert telegram_bot.platform_username == "assistant_test_bot"


def test_reply_to_the_bot_in_a_group_is_answered(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    ours = bot_message("Earlier answer", chat_id=GROUP_ID, message_id=999)
    reply = update_of(message("and why is that?", group=True, reply_to=ours))
    someone_else = message("hi", group=True, user_id=5151)
    reply_to_other = update_of(message("nope", group=True, reply_to=someone_else))

    assert post_update(client, telegram_bot, reply_to_other).json()["stored"] == 0
    assert post_update(client, telegram_bot, reply).json()["stored"] == 1

    delivered()
    assert fake_openai.requests[0]["messages"][-1]["content"] == "and why is that?"


@pytest.mark.django_db
def test_text_mention_of_the_bot_counts(client, telegram_bot):
    text = "Assistant, summarize please"
    entities = entities_for(text, (MessageEntity.TEXT_MENTION, "Assistant"))
    update = update_of(message(text, group=True, entities=entities))

    assert post_update(client, telegram_bot, update).json()["stored"] == 1
    assert Message.objects.get().text == "summarize please"
    assert entities[0].user.id == BOT_ID


def test_commands_help_and_reset(client, worker, telegram_bot, fake_telegram, fake_openai):
    post_update(client, telegram_bot, private_text_update("hello"))
    delivered(1)
    first = Conversation.objects.get()

    post_update(client, telegram_bot, private_text_update("/help"))
    help_reply = delivered(2)[-1]
    assert help_reply.text == HELP_TEXT and help_reply.author == Author.SYSTEM

    post_update(client, telegram_bot, private_text_update("/reset"))
    delivered(3)
    first.refresh_from_db()
    assert first.closed_at is not None

    post_update(client, telegram_bot, private_text_update("who are you?"))
    delivered(4)
    second = Conversation.objects.get(closed_at__isnull=True)
    assert second.pk != first.pk
    # The new conversation starts fresh: the model does not see the old turns.
    assert fake_openai.requests[-1]["messages"][-1]["content"] == "who are you?"
    assert "hello" not in [m["content"] for m in fake_openai.requests[-1]["messages"]]
    assert len(fake_openai.requests) == 2  # commands are not sent to the model


def test_group_command_for_us_is_answered_and_for_another_bot_is_not(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    other = update_of(message("/help@some_other_bot", group=True))
    ours = update_of(message("/help@assistant_test_bot", group=True))

    assert post_update(client, telegram_bot, other).json()["stored"] == 0
    assert post_update(client, telegram_bot, ours).json()["stored"] == 1

    [reply] = delivered()
    assert reply.text == HELP_TEXT
    assert fake_telegram.chat(GROUP_ID)[0].text == HELP_TEXT


@pytest.mark.parametrize("policy", [EditedMessages.IGNORE, EditedMessages.ANSWER])
def test_edited_messages_follow_the_bot_setting(
    client, worker, telegram_bot, fake_telegram, fake_openai, policy
):
    bot_update(bot=telegram_bot, edited_messages=policy)
    original = message("wht is 2+2", message_id=77)
    edited = message("what is 2+2", message_id=77)

    post_update(client, telegram_bot, update_of(original))
    delivered(1)
    stored = post_update(client, telegram_bot, update_of(edited, edited=True)).json()["stored"]

    if policy == EditedMessages.IGNORE:
        assert stored == 0
        assert len(fake_openai.requests) == 1
    else:
        assert stored == 1
        delivered(2)
        assert fake_openai.requests[-1]["messages"][-1]["content"] == "what is 2+2"


def test_group_upgrade_to_supergroup_is_followed(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    old_group = -4001
    first = group_text_update("@assistant_test_bot hi", mention=True, chat_id=old_group)
    post_update(client, telegram_bot, first)
    delivered(1)
    conversation = Conversation.objects.get()

    post_update(client, telegram_bot, migration_update(old_chat_id=old_group, new_chat_id=-100555))

    conversation.refresh_from_db()
    assert conversation.chat_id == "-100555"
    assert conversation.closed_at is None


def test_sending_into_an_upgraded_group_follows_it_to_the_supergroup(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    fake_openai.reply = "Here you go."
    fake_telegram.fail("sendMessage", 400, migrate_to_chat_id=-100999)
    old_group = -4002

    post_update(
        client,
        telegram_bot,
        group_text_update("@assistant_test_bot hi", mention=True, chat_id=old_group),
    )

    [answer] = delivered()
    assert answer.conversation.chat_id == "-100999"
    assert [m.text for m in fake_telegram.chat(-100999)] == ["Here you go."]
    assert fake_telegram.chat(old_group) == []


@pytest.mark.django_db
def test_only_the_mention_is_removed_and_the_rest_keeps_its_spacing(client, telegram_bot):
    text = "explain  this:\n    x  =  1  # 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 @assistant_test_bot  please"
    update = group_text_update(text, mention=True)

    assert post_update(client, telegram_bot, update).json()["stored"] == 1

    assert Message.objects.get().text == "explain  this:\n    x  =  1  # 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 please"


@pytest.mark.django_db
def test_a_mention_is_never_dropped_when_the_username_is_not_known_yet(
    client, telegram_bot, fake_telegram
):
    fake_telegram.fail("getMe", 500)
    update = group_text_update("@assistant_test_bot are you there?", mention=True)

    first = post_update(client, telegram_bot, update)
    assert first.status_code == 503  # Telegram delivers it again later
    assert Message.objects.count() == 0

    again = post_update(client, telegram_bot, update)
    assert again.status_code == 200 and again.json()["stored"] == 1
    assert Message.objects.get().text == "are you there?"
