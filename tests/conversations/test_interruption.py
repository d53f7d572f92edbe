"""A user who writes again while an answer is streaming: the bot's `while_answering`
setting decides. Finish that answer, then answer the new message (the default); or stop
it, keep the text written so far, and answer every message together in one answer."""

from __future__ import annotations

from apps.bots.choices import WhileAnswering
from apps.bots.services import bot_update
from apps.conversations.choices import Direction, MessageStatus
from apps.conversations.models import Message
from tests.fakes.server import wait_for
from tests.telegram_updates import post_update, private_text_update


def outbound(status: str | None = None):
    rows = Message.objects.filter(direction=Direction.OUT).order_by("id")
    return list(rows.filter(status=status) if status else rows)


def user_texts(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "user"]


def test_a_new_message_stops_the_answer_and_everything_is_answered_together(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    bot_update(bot=telegram_bot, while_answering=WhileAnswering.INTERRUPT)
    fake_openai.reply = "The first answer, which takes its time."
    fake_openai.chunk_size = 4
    fake_openai.stall_after_chunks = 2  # the first answer hangs after two pieces
    written = fake_openai.reply[:8]  # "The firs"
    post_update(client, telegram_bot, private_text_update("first question"))
    # Both pieces are shown (the reader has them) before the user writes again; the first
    # update may show only the first piece.
    wait_for(lambda: [m.text for m in fake_telegram.chat(4242)] == [written] or None, timeout=30)

    fake_openai.stall_after_chunks = None
    fake_openai.reply = "One answer to both."
    post_update(client, telegram_bot, private_text_update("second question"))

    [answer] = wait_for(lambda: outbound(MessageStatus.DELIVERED) or None, timeout=30)
    [stopped] = outbound(MessageStatus.INTERRUPTED)
    assert [m.pk for m in outbound()] == [stopped.pk, answer.pk]
    assert stopped.text == written and stopped.error.startswith("interrupted")
    assert answer.text == "One answer to both."
    # The second call was given both questions, not the stopped answer's fragment.
    first_call, second_call = fake_openai.chat_requests()
    assert user_texts(first_call)[-1:] == ["first question"]
    assert user_texts(second_call)[-2:] == ["first question", "second question"]
    assert written not in str(second_call["messages"])
    # Both user messages are answered, by the second answer.
    inbound = Message.objects.filter(direction=Direction.IN).order_by("id")
    assert [m.status for m in inbound] == [MessageStatus.ANSWERED] * 2
    # In the chat: the stopped answer shows what was kept, the new answer follows it.
    first_shown, second_shown = fake_telegram.chat(4242)
    assert first_shown.text == written
    assert second_shown.text == "One answer to both."


def test_by_default_the_answer_is_finished_then_the_new_message_is_answered(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    assert telegram_bot.while_answering == WhileAnswering.FINISH
    fake_openai.reply_for = lambda body: "answer to " + user_texts(body)[-1]
    fake_openai.chunk_size = 3
    fake_openai.chunk_delay = 0.2  # about 2 s per answer
    post_update(client, telegram_bot, private_text_update("first question"))
    wait_for(lambda: fake_telegram.chat(4242), timeout=30)

    post_update(client, telegram_bot, private_text_update("second question"))

    answers = wait_for(lambda: outbound(MessageStatus.DELIVERED)[1:] and outbound(), timeout=60)
    assert [m.text for m in answers] == ["answer to first question", "answer to second question"]
    assert not outbound(MessageStatus.INTERRUPTED)
    assert [m.text for m in fake_telegram.chat(4242)] == [
        "answer to first question",
        "answer to second question",
    ]
