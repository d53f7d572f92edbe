"""The web chat over a real websocket consumer, answered through the real worker."""

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings

from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Message
from assistant.asgi import application


def communicator_for(client, bot) -> WebsocketCommunicator:
    page = client.get(f"/chat/{bot.pk}/")
    assert page.status_code == 200
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return WebsocketCommunicator(
        application,
        f"/ws/chat/{bot.pk}/",
        headers=[
            (b"cookie", cookie.encode()),
            (b"origin", b"http://127.0.0.1:8000"),
            (b"host", b"testserver"),
        ],
    )


async def receive_until(communicator, predicate, timeout=30):
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            event = await communicator.receive_json_from(timeout=timeout)
            seen.append(event)
            if predicate(event):
                return seen


async def ask(communicator, text: str) -> dict:
    """Connect, send one message and return the delivered answer's message payload."""
    await communicator.connect()
    await communicator.receive_json_from()
    await communicator.send_json_to({"type": "message", "id": "c1", "text": text})
    events = await receive_until(
        communicator,
        lambda e: e["type"] == "message" and e["message"]["status"] == "delivered",
    )
    return events[-1]["message"]


def test_answer_streams_token_by_token(client, worker, web_bot, fake_openai, settings):
    fake_openai.reply = "One two three four five six."
    fake_openai.chunk_size = 4
    # Pieces come slower than events are batched, so the answer arrives in several events.
    fake_openai.chunk_delay = settings.EVENT_BATCH_SECONDS * 4
    communicator = communicator_for(client, web_bot)

    async def scenario():
        connected, _ = await communicator.connect()
        assert connected
        history = await communicator.receive_json_from()
        assert history == {"type": "history", "messages": []}
        await communicator.send_json_to({"type": "message", "id": "c1", "text": "count please"})
        events = await receive_until(
            communicator,
            lambda e: e["type"] == "message" and e["message"]["status"] == "delivered",
        )
        await communicator.disconnect()
        return events

    events = asyncio.run(scenario())

    tokens = [e["delta"] for e in events if e["type"] == "token"]
    # The fake streams the reply in 7 pieces of 4 characters; batching may join neighbours.
    assert 1 < len(tokens) <= 7
    assert "".join(tokens) == "One two three four five six."
    assert any(e["type"] == "ack" and e["id"] == "c1" and not e["duplicate"] for e in events)
    user_events = [e for e in events if e["type"] == "message" and e["message"]["author"] == "user"]
    assert user_events[0]["message"]["text"] == "count please"
    final = events[-1]["message"]
    assert final["text"] == "One two three four five six." and final["author"] == "assistant"
    # The first token came after the answer row was announced, the final state after the tokens.
    first_token = next(i for i, e in enumerate(events) if e["type"] == "token")
    announced = next(
        i
        for i, e in enumerate(events)
        if e["type"] == "message" and e["message"]["author"] == "assistant"
    )
    assert announced < first_token
    answer = Message.objects.get(direction=Direction.OUT)
    assert answer.status == MessageStatus.DELIVERED and answer.author == Author.ASSISTANT


def test_resent_frame_is_not_answered_twice_and_history_is_replayed(
    client, worker, web_bot, fake_openai
):
    communicator = communicator_for(client, web_bot)

    async def first_visit():
        await communicator.connect()
        await communicator.receive_json_from()
        await communicator.send_json_to({"type": "message", "id": "same", "text": "hi"})
        await receive_until(
            communicator, lambda e: e["type"] == "message" and e["message"]["status"] == "delivered"
        )
        await communicator.send_json_to({"type": "message", "id": "same", "text": "hi"})
        ack = await receive_until(communicator, lambda e: e["type"] == "ack")
        await communicator.disconnect()
        return ack[-1]

    ack = asyncio.run(first_visit())
    assert ack["duplicate"] is True
    assert len(fake_openai.requests) == 1

    again = communicator_for(client, web_bot)

    async def second_visit():
        await again.connect()
        history = await again.receive_json_from()
        await again.disconnect()
        return history

    history = asyncio.run(second_visit())
    assert [(m["author"], m["text"]) for m in history["messages"]] == [
        ("user", "hi"),
        ("assistant", fake_openai.reply),
    ]


@pytest.mark.parametrize(
    "frame, error",
    [
        ({"type": "message", "id": "x", "text": "   "}, "non-empty text"),
        ({"type": "message", "text": "hi"}, "needs an id"),
        ({"type": "other"}, "type 'message'"),
    ],
)
def test_bad_frames_get_a_clear_error_and_store_nothing(client, web_bot, frame, error):
    communicator = communicator_for(client, web_bot)

    async def scenario():
        await communicator.connect()
        await communicator.receive_json_from()
        await communicator.send_json_to(frame)
        reply = await communicator.receive_json_from()
        await communicator.disconnect()
        return reply

    reply = asyncio.run(scenario())
    assert reply["type"] == "error" and error in reply["error"]
    assert Message.objects.count() == 0


def test_disabled_bot_refuses_visitors(client, web_bot):
    communicator = communicator_for(client, web_bot)
    web_bot.enabled = False
    web_bot.save()

    async def scenario():
        connected, code = await communicator.connect()
        await communicator.disconnect()  # the consumer ends, not cancelled by asyncio.run
        return connected, code

    connected, code = asyncio.run(scenario())
    assert not connected and code == 4403
    assert client.get(f"/chat/{web_bot.pk}/").status_code == 404


def test_visitor_rates_an_answer_and_may_change_their_mind(client, worker, web_bot, fake_openai):
    from apps.conversations.models import Feedback

    communicator = communicator_for(client, web_bot)

    async def scenario():
        answer_id = (await ask(communicator, "hi"))["id"]
        replies = []
        for rating in ("not_helpful", "helpful"):
            await communicator.send_json_to(
                {"type": "feedback", "message_id": answer_id, "rating": rating}
            )
            replies += await receive_until(communicator, lambda e: e["type"] == "feedback_ok")
        await communicator.disconnect()
        return answer_id, replies

    answer_id, replies = asyncio.run(scenario())

    assert replies[-1] == {"type": "feedback_ok", "message_id": answer_id, "rating": "helpful"}
    feedback = Feedback.objects.get()  # one per visitor and answer: the latest counts
    assert feedback.message_id == answer_id and feedback.rating == "helpful"


@pytest.mark.parametrize(
    "frame, error",
    [
        ({"type": "feedback", "message_id": 999999, "rating": "helpful"}, "no such answer"),
        ({"type": "feedback", "message_id": "1", "rating": "helpful"}, "message_id"),
        ({"type": "feedback", "message_id": 1, "rating": "meh"}, "rating"),
        ({"type": "regenerate", "message_id": 999999}, "no such answer"),
    ],
)
def test_bad_feedback_frames_get_an_error(client, web_bot, frame, error):
    from apps.conversations.models import Conversation, Feedback

    communicator = communicator_for(client, web_bot)
    visitor = client.session["webchat_visitor"]
    # Another visitor's answer is not this visitor's to rate.
    other = Conversation.objects.create(bot=web_bot, chat_id="someone-else", chat_type="private")
    Message.objects.create(
        id=999999,
        conversation=other,
        bot=web_bot,
        direction=Direction.OUT,
        author=Author.ASSISTANT,
        text="theirs",
        status=MessageStatus.DELIVERED,
    )
    Conversation.objects.create(bot=web_bot, chat_id=visitor, chat_type="private")

    async def scenario():
        await communicator.connect()
        await communicator.receive_json_from()
        await communicator.send_json_to(frame)
        reply = await communicator.receive_json_from()
        await communicator.disconnect()
        return reply

    reply = asyncio.run(scenario())
    assert reply["type"] == "error" and error in reply["error"]
    assert not Feedback.objects.exists()


def test_visitor_regenerates_an_answer(client, worker, web_bot, fake_openai):
    communicator = communicator_for(client, web_bot)

    async def scenario():
        first_id = (await ask(communicator, "a joke please"))["id"]
        fake_openai.reply = "A better joke."
        await communicator.send_json_to({"type": "regenerate", "message_id": first_id})
        again = await receive_until(
            communicator,
            lambda e: (
                e["type"] == "message"
                and e["message"]["status"] == "delivered"
                and e["message"]["id"] != first_id
            ),
        )
        await communicator.disconnect()
        return again

    again = asyncio.run(scenario())
    assert any(e["type"] == "regenerate_ok" for e in again)
    assert again[-1]["message"]["text"] == "A better joke."
    assert len(fake_openai.requests) == 2
