"""Telegram media, answer buttons and access policies, end to end on a real worker."""

from __future__ import annotations

import pytest

from apps.bots.choices import AccessPolicy, PairingStatus
from apps.bots.models import PairingRequest
from apps.bots.services import bot_update
from apps.conversations.choices import Author, Direction, MessageStatus, Rating
from apps.conversations.models import Feedback, Message, MessageAttachment
from tests.fakes.server import wait_for
from tests.telegram_updates import (
    callback_update,
    document_update,
    photo_update,
    post_update,
    private_text_update,
    voice_update,
)

CHAT = 4242


def delivered(count: int = 1) -> list[Message]:
    def rows():
        found = list(
            Message.objects.filter(
                direction=Direction.OUT, status=MessageStatus.DELIVERED
            ).order_by("id")
        )
        return found if len(found) >= count else None

    return wait_for(rows, timeout=60)


@pytest.fixture
def files(fake_telegram):
    fake_telegram.add_file("photo-large", b"\xff\xd8\xff fake jpeg", "photos/file_1.jpg")
    fake_telegram.add_file("voice-1", b"OggS fake opus", "voice/file_2.oga")
    fake_telegram.add_file("doc-1", b"%PDF-1.4 fake", "documents/file_3.pdf")
    return fake_telegram


@pytest.mark.parametrize(
    ("update", "kind", "file_id", "mime_type", "text"),
    [
        (
            lambda: photo_update("what is in this picture?"),
            "image",
            "photo-large",
            "image/jpeg",
            "what is in this picture?",
        ),
        (lambda: voice_update(), "audio", "voice-1", "audio/ogg", ""),
        (lambda: document_update(), "file", "doc-1", "application/pdf", ""),
    ],
    ids=["photo", "voice", "document"],
)
def test_media_is_stored_as_an_attachment_and_gets_a_reply(
    client, worker, telegram_bot, files, fake_openai, update, kind, file_id, mime_type, text
):
    assert post_update(client, telegram_bot, update()).json()["stored"] == 1

    inbound = Message.objects.get(direction=Direction.IN)
    assert inbound.text == text
    [attachment] = MessageAttachment.objects.filter(message=inbound)
    assert (attachment.kind, attachment.platform_file_id, attachment.mime_type) == (
        kind,
        file_id,
        mime_type,
    )
    # Some reply reaches the user: an answer, or a clear note about what is not supported.
    delivered()
    assert files.chat(CHAT)[0].text.strip()


def test_feedback_buttons_store_a_rating_and_answer_the_callback(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    post_update(client, telegram_bot, private_text_update("hi"))
    [answer] = delivered()
    shown = fake_telegram.chat(CHAT)[0]

    press = callback_update(
        f"a:not_helpful:{answer.pk}", chat_id=CHAT, message_id=shown.message_id, query_id="q-77"
    )
    assert post_update(client, telegram_bot, press).status_code == 200
    post_update(client, telegram_bot, press)  # Telegram retried: still one rating

    feedback = Feedback.objects.get()
    assert (feedback.message_id, feedback.rating, feedback.platform_user_id) == (
        answer.pk,
        Rating.NOT_HELPFUL,
        "4242",
    )
    [ack] = fake_telegram.sent("answerCallbackQuery")
    assert ack.params["callback_query_id"] == "q-77"
    assert ack.params["text"]


def test_regenerate_button_produces_a_second_answer(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    fake_openai.reply = "First try."
    post_update(client, telegram_bot, private_text_update("tell me a joke"))
    [first] = delivered()

    fake_openai.reply = "Second try."
    press = callback_update(
        f"a:regenerate:{first.pk}", chat_id=CHAT, message_id=int(first.platform_message_id)
    )
    post_update(client, telegram_bot, press)

    answers = delivered(2)
    assert [a.text for a in answers] == ["First try.", "Second try."]
    assert [m.text for m in fake_telegram.chat(CHAT)] == ["First try.", "Second try."]
    assert fake_openai.requests[-1]["messages"][-1]["content"] == "tell me a joke"
    assert fake_telegram.sent("answerCallbackQuery")


def test_a_press_on_someone_elses_chat_changes_nothing(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    post_update(client, telegram_bot, private_text_update("hi"))
    [answer] = delivered()

    press = callback_update(f"a:helpful:{answer.pk}", chat_id=9999, message_id=1, user_id=9999)
    post_update(client, telegram_bot, press)

    assert Feedback.objects.count() == 0
    assert fake_telegram.sent("answerCallbackQuery")[0].params["text"]


def test_allowlist_refuses_strangers_and_answers_listed_users(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    bot_update(bot=telegram_bot, access_policy=AccessPolicy.ALLOWLIST, allowed_user_ids=["4242"])

    post_update(client, telegram_bot, private_text_update("let me in", user_id=5555))
    post_update(client, telegram_bot, private_text_update("hello", user_id=4242))

    delivered(2)
    assert len(fake_openai.requests) == 1  # only the listed user reached the model
    [refusal] = fake_telegram.chat(5555)
    assert "only available to approved users" in refusal.text
    assert fake_telegram.chat(4242)[0].text == fake_openai.reply


def test_pairing_code_then_admin_approval_then_answers(
    client, worker, telegram_bot, fake_telegram, fake_openai, staff_user
):
    bot_update(bot=telegram_bot, access_policy=AccessPolicy.PAIRING)

    post_update(client, telegram_bot, private_text_update("hi", user_id=6001))
    [notice] = delivered()
    request = PairingRequest.objects.get()
    assert notice.author == Author.SYSTEM
    assert request.code in fake_telegram.chat(6001)[0].text
    assert len(fake_openai.requests) == 0

    client.force_login(staff_user)
    response = client.post(
        "/admin/bots/pairingrequest/",
        {"action": "approve_requests", "_selected_action": [request.pk]},
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == PairingStatus.APPROVED and request.decided_by == staff_user

    post_update(client, telegram_bot, private_text_update("now?", user_id=6001))
    delivered(2)
    assert len(fake_openai.requests) == 1
    assert fake_telegram.chat(6001)[-1].text == fake_openai.reply
