"""The Telegram path end to end: webhook -> ingest -> real Celery worker -> model -> sendMessage."""

import pytest

from apps.bots.models import UnprocessedEvent
from apps.conversations.choices import Direction, MessageStatus
from apps.conversations.models import Conversation, Message
from tests.fakes.server import wait_for
from tests.telegram_updates import post_body, post_update, private_text_update


def test_update_is_answered_with_the_streamed_model_text(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    fake_openai.reply = "Paris is the capital of France."
    update = private_text_update("What is the capital of France?")

    response = post_update(client, telegram_bot, update)

    assert response.status_code == 200
    wait_for(
        lambda: Message.objects.filter(
            direction=Direction.OUT, status=MessageStatus.DELIVERED
        ).exists()
    )
    sent = fake_telegram.sent("sendMessage")
    assert len(sent) == 1  # streamed into one message, then finalized by editing it
    [shown] = fake_telegram.chat(update["message"]["chat"]["id"])
    assert shown.text == "Paris is the capital of France."
    assert int(sent[0].params["chat_id"]) == update["message"]["chat"]["id"]
    assert sent[0].params["reply_parameters"]["message_id"] == update["message"]["message_id"]
    assert sent[0].token == telegram_bot.config["token"]
    # The model saw the user's text and was asked to stream.
    assert fake_openai.requests[0]["stream"] is True
    assert fake_openai.requests[0]["messages"][-1] == {
        "role": "user",
        "content": "What is the capital of France?",
    }

    answer = wait_for(
        lambda: Message.objects.filter(
            direction=Direction.OUT, status=MessageStatus.DELIVERED
        ).first()
    )
    assert answer.text == "Paris is the capital of France."
    assert answer.profile_id == telegram_bot.profile_id
    assert answer.completion_tokens == 8 and answer.prompt_tokens == 11
    assert answer.first_token_at and answer.model_done_at and answer.delivered_at
    assert answer.platform_message_id == "1000"
    inbound = Message.objects.get(direction=Direction.IN)
    assert inbound.status == MessageStatus.ANSWERED
    conversation = Conversation.objects.get()
    assert conversation.participants == {"4242": "Ada Lovelace"}


def test_duplicate_delivery_is_acknowledged_and_not_answered_twice(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    update = private_text_update("hello")
    assert post_update(client, telegram_bot, update).status_code == 200
    wait_for(lambda: Message.objects.filter(status=MessageStatus.DELIVERED).exists())

    again = post_update(client, telegram_bot, update)

    assert again.status_code == 200
    assert again.json()["stored"] == 0
    assert Message.objects.filter(direction=Direction.IN).count() == 1
    # A later, new update is answered; the duplicate never was.
    post_update(client, telegram_bot, private_text_update("and again"))
    wait_for(lambda: Message.objects.filter(status=MessageStatus.DELIVERED).count() == 2)
    assert len(fake_telegram.sent("sendMessage")) == 2
    assert len(fake_openai.requests) == 2


@pytest.mark.django_db
def test_wrong_secret_is_403_and_stores_nothing(client, telegram_bot):
    response = post_update(client, telegram_bot, private_text_update("hi"), secret="wrong")

    assert response.status_code == 403
    assert Message.objects.count() == 0
    assert Conversation.objects.count() == 0


@pytest.mark.django_db
def test_missing_secret_is_403(client, telegram_bot):
    response = client.post(
        f"/api/webhooks/telegram/{telegram_bot.pk}/", data="{}", content_type="application/json"
    )
    assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe"])
def test_a_body_that_is_not_json_is_400_never_500(client, telegram_bot, body):
    response = post_body(client, telegram_bot, body)

    assert response.status_code == 400
    assert Message.objects.count() == 0 and not UnprocessedEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",
        b'{"update_id": "x"}',
        b'{"update_id": 1, "message": {"message_id": "x"}}',
    ],
)
def test_an_authentic_update_we_cannot_use_is_kept_and_answered_200(client, telegram_bot, body):
    response = post_body(client, telegram_bot, body)

    assert response.status_code == 200
    assert Message.objects.count() == 0
    [kept] = UnprocessedEvent.objects.all()
    assert bytes(kept.body) == body and kept.reason


@pytest.mark.django_db
def test_unknown_bot_is_404(client, telegram_bot):
    response = client.post(
        "/api/webhooks/telegram/00000000-0000-0000-0000-000000000000/",
        data="{}",
        content_type="application/json",
    )
    assert response.status_code == 404


def test_telegrams_published_example_update_is_stored_and_answered(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    from tests.telegram_published import MESSAGE_WITH_TEXT

    fake_openai.reply = "Hello there."
    response = client.post(
        f"/api/webhooks/telegram/{telegram_bot.pk}/",
        data=MESSAGE_WITH_TEXT,
        content_type="application/json",
        headers={"X-Telegram-Bot-Api-Secret-Token": telegram_bot.config["webhook_secret"]},
    )

    assert response.json() == {"ok": True, "stored": 1}
    assert not UnprocessedEvent.objects.exists()
    message = Message.objects.get(direction=Direction.IN)
    assert (message.external_id, message.conversation.chat_id) == ("10000", "1111111")
    assert message.conversation.chat_type == "private"  # told by the chat id, see parsing
    # The example carries no bot_command entity, so "/start" is plain text to the model.
    wait_for(
        lambda: Message.objects.filter(
            direction=Direction.OUT, status=MessageStatus.DELIVERED
        ).exists()
    )
    [shown] = fake_telegram.chat(1111111)
    assert shown.text == "Hello there."
