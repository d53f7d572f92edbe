"""Sending to Telegram: streaming edits, formatting, long answers, faults, typing."""

from __future__ import annotations

from apps.conversations.choices import Direction, MessageStatus
from apps.conversations.models import Message
from tests.fakes.server import wait_for
from tests.telegram_updates import post_update, private_text_update

CHAT = 4242  # the private chat of the default test user


def delivered(count: int = 1, timeout: float = 60) -> list[Message]:
    def rows():
        found = list(
            Message.objects.filter(direction=Direction.OUT, status=MessageStatus.DELIVERED)
        )
        return found if len(found) >= count else None

    return wait_for(rows, timeout=timeout)


def test_streaming_edits_one_message_and_ends_with_the_full_answer(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    full = "One, two, three, four, five, six, seven, eight, nine, ten. Done counting!"
    fake_openai.reply = full
    fake_openai.chunk_size = 6
    fake_openai.chunk_delay = 0.35  # about 4.5 s of streaming: several edits at 1/s

    post_update(client, telegram_bot, private_text_update("count to ten"))
    [answer] = delivered()

    sends = fake_telegram.sent("sendMessage")
    assert len(sends) == 1  # exactly one message per answer
    [shown] = fake_telegram.chat(CHAT)
    assert shown.text == full == answer.text
    # It was really streamed: partial texts first, each edit different from the last.
    assert len(shown.edits) >= 3
    assert sends[0].params["text"] != full
    texts = [sends[0].params["text"], *shown.edits]
    assert all(before != after for before, after in zip(texts, texts[1:], strict=False))
    assert all(full.startswith(text) for text in texts)
    # No edit was refused as "not modified"; the buttons came with the last edit only
    # (with the rest of the text, or alone when the stream had already shown it all).
    assert all(call.status == 200 for call in fake_telegram.calls)
    edits = [
        call
        for call in fake_telegram.calls
        if call.method in ("editMessageText", "editMessageReplyMarkup")
    ]
    assert edits[-1].params.get("reply_markup")
    assert not any(call.params.get("reply_markup") for call in edits[:-1])
    buttons = [b["callback_data"] for row in shown.reply_markup["inline_keyboard"] for b in row]
    assert buttons == [
        f"a:helpful:{answer.pk}",
        f"a:not_helpful:{answer.pk}",
        f"a:regenerate:{answer.pk}",
    ]
    assert answer.platform_message_id == str(shown.message_id)
    # The model's text came at once: no "typing…" was needed before it.
    assert not fake_telegram.sent("sendChatAction")


def test_markup_that_would_break_html_is_delivered_intact(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    nasty = "<b>unclosed & a_b*c </i> 2 < 3 && x > y [link](http://x) `code` **bold**"
    fake_openai.reply = nasty

    post_update(client, telegram_bot, private_text_update("break it"))
    delivered()

    [shown] = fake_telegram.chat(CHAT)
    # What the user sees is the model's text, with the **bold** and `code` rendered.
    assert shown.text == nasty.replace("`code`", "code").replace("**bold**", "bold")
    # The last call that showed text (an edit after streaming, or the one send of a
    # quick answer).
    final = [
        call for call in fake_telegram.calls if call.method in ("sendMessage", "editMessageText")
    ][-1].params
    assert final["parse_mode"] == "HTML"
    assert "<code>code</code>" in final["text"] and "<b>bold</b>" in final["text"]
    assert "&lt;b&gt;unclosed &amp; a_b*c" in final["text"]


def test_a_parse_error_is_resent_as_plain_text(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    fake_openai.reply = "A fine answer."
    fake_telegram.fail(
        "sendMessage", 400, description="Bad Request: can't parse entities: at byte offset 3"
    )

    post_update(client, telegram_bot, private_text_update("hi"))
    delivered()

    sends = fake_telegram.sent("sendMessage")
    assert [call.status for call in sends] == [400, 200]
    assert "parse_mode" not in sends[1].params
    assert fake_telegram.chat(CHAT)[0].text == "A fine answer."


def test_a_9000_character_answer_arrives_as_three_messages(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    paragraph = ("word " * 199 + "end.\n\n") * 9  # 9 paragraphs of 1000 characters
    fake_openai.reply = paragraph.strip()
    fake_openai.chunk_size = 3000

    post_update(client, telegram_bot, private_text_update("write a lot"))
    [answer] = delivered()

    shown = fake_telegram.chat(CHAT)
    assert len(shown) == 3
    assert all(len(message.text) <= 4096 for message in shown)
    assert " ".join(m.text for m in shown).split() == answer.text.split()
    assert len(fake_telegram.sent("sendMessage")) == 3
    # Only the last part carries the buttons.
    assert [bool(m.reply_markup) for m in shown] == [False, False, True]


def test_429_and_500_for_a_while_still_deliver_exactly_once(
    client, worker, telegram_bot, fake_telegram, fake_openai, settings
):
    fake_openai.reply = "Survived the storm."
    fake_telegram.fail("sendMessage", 429, retry_after=1)
    fake_telegram.fail("sendMessage", 500, times=2)

    post_update(client, telegram_bot, private_text_update("hello?"))
    [answer] = delivered(timeout=90)

    ok_sends = fake_telegram.sent("sendMessage", ok_only=True)
    assert len(ok_sends) == 1
    assert [m.text for m in fake_telegram.chat(CHAT)] == ["Survived the storm."]
    assert answer.delivery_attempts >= 2
    failed = [c.status for c in fake_telegram.calls if c.status != 200]
    assert 429 in failed and 500 in failed


def test_failing_edits_after_the_first_streamed_message_still_end_in_one_full_answer(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    full = "Alpha beta gamma delta epsilon zeta eta theta iota kappa."
    fake_openai.reply = full
    fake_openai.chunk_size = 8
    fake_openai.chunk_delay = 0.4
    fake_telegram.fail("editMessageText", 429, retry_after=1)
    fake_telegram.fail("editMessageText", 500, times=2)

    post_update(client, telegram_bot, private_text_update("greek letters"))
    [answer] = delivered(timeout=90)

    assert len(fake_telegram.sent("sendMessage")) == 1
    [shown] = fake_telegram.chat(CHAT)
    assert shown.text == full == answer.text
    assert shown.reply_markup  # the buttons arrived with the final text
    failed = sorted(c.status for c in fake_telegram.sent("editMessageText") if c.status != 200)
    assert failed == [429, 500, 500]


def test_typing_is_repeated_while_a_slow_model_thinks(
    client, worker, telegram_bot, fake_telegram, fake_openai, profile
):
    profile.first_token_timeout = 30
    profile.save(update_fields=["first_token_timeout"])
    fake_openai.first_token_delay = 9  # longer than the ~5 s a typing status lasts

    post_update(client, telegram_bot, private_text_update("think hard"))
    delivered(timeout=60)

    methods = [call.method for call in fake_telegram.calls]
    before_answer = methods[: methods.index("sendMessage")]
    assert before_answer.count("sendChatAction") >= 2


def test_download_fetches_the_file_through_get_file(telegram_bot, fake_telegram):
    from apps.bots.platforms import adapter_for
    from apps.bots.platforms.base import InboundAttachment

    fake_telegram.add_file("photo-large", b"\x89PNG fake bytes", "photos/file_1.jpg")
    adapter = adapter_for(telegram_bot)

    content = adapter.download(
        message_platform_id="10",
        attachment=InboundAttachment(kind="image", platform_file_id="photo-large"),
    )

    assert content == b"\x89PNG fake bytes"
    assert fake_telegram.sent("getFile")[0].params["file_id"] == "photo-large"
