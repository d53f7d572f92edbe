"""Takeover end to end: Telegram webhook -> real worker; staff replies reach the fake Telegram."""

from apps.audit.models import AuditEvent
from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Conversation, Message
from tests.fakes.server import wait_for
from tests.telegram_updates import post_update, private_text_update


def _delivered_answers():
    return Message.objects.filter(direction=Direction.OUT, status=MessageStatus.DELIVERED)


def test_take_over_reply_and_hand_back(
    client, worker, operator, telegram_bot, fake_telegram, fake_openai
):
    fake_openai.reply = "AI answer."
    post_update(client, telegram_bot, private_text_update("first question"))
    wait_for(lambda: _delivered_answers().count() == 1)
    conversation = Conversation.objects.get()
    client.force_login(operator)

    response = client.post(f"/console/conversations/{conversation.pk}/take-over/")

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.handled_by == operator and conversation.taken_over_at is not None
    assert AuditEvent.objects.filter(
        action="conversation.take_over", actor=operator, target_id=str(conversation.pk)
    ).exists()

    # While taken over, the user's message is stored and shown, not answered by the model.
    post_update(client, telegram_bot, private_text_update("are you a human?"))
    skipped = wait_for(
        lambda: Message.objects.filter(
            text="are you a human?", status=MessageStatus.SKIPPED
        ).first()
    )
    assert skipped.direction == Direction.IN
    assert len(fake_openai.requests) == 1

    response = client.post(
        f"/console/conversations/{conversation.pk}/reply/",
        {"text": "Yes, this is Grace from support."},
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 200 and response.json()["ok"] is True
    sent = wait_for(
        lambda: [
            call
            for call in fake_telegram.sent("sendMessage")
            if call.params["text"] == "Yes, this is Grace from support."
        ]
    )
    assert int(sent[0].params["chat_id"]) == 4242
    assert "reply_markup" not in sent[0].params  # no feedback buttons on staff replies
    staff_message = wait_for(
        lambda: Message.objects.filter(author=Author.STAFF, status=MessageStatus.DELIVERED).first()
    )
    assert staff_message.pk == response.json()["message_id"]
    assert staff_message.sender_id == "operator"
    assert AuditEvent.objects.filter(action="conversation.staff_reply", actor=operator).exists()

    response = client.post(f"/console/conversations/{conversation.pk}/hand-back/")

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.handled_by is None
    assert AuditEvent.objects.filter(action="conversation.hand_back", actor=operator).exists()
    post_update(client, telegram_bot, private_text_update("thanks, and the AI again?"))
    wait_for(lambda: _delivered_answers().filter(author=Author.ASSISTANT).count() == 2)
    assert len(fake_openai.requests) == 2
    # The skipped message stays skipped: staff saw it, the model never answers it late.
    skipped.refresh_from_db()
    assert skipped.status == MessageStatus.SKIPPED


def test_reply_without_taking_over_is_refused(client, operator, web_bot):
    conversation = Conversation.objects.create(bot=web_bot, chat_id="v1", chat_type="private")
    client.force_login(operator)

    response = client.post(
        f"/console/conversations/{conversation.pk}/reply/",
        {"text": "hello"},
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 400
    assert "Take the conversation over" in response.json()["error"]
    assert not Message.objects.exists()


def test_empty_reply_is_refused(client, operator, web_bot):
    conversation = Conversation.objects.create(
        bot=web_bot, chat_id="v1", chat_type="private", handled_by=operator
    )
    client.force_login(operator)

    response = client.post(
        f"/console/conversations/{conversation.pk}/reply/",
        {"text": "   "},
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 400
    assert not Message.objects.exists()
