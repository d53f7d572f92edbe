"""The live console over real websockets: summaries, streamed tokens, takeover seen by others."""

import asyncio

from apps.conversations.models import Conversation
from tests.console.conftest import staff_socket
from tests.telegram_updates import post_update, private_text_update
from tests.threads import in_thread


async def receive_until(communicator, predicate, timeout=30):
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            event = await communicator.receive_json_from(timeout=timeout)
            seen.append(event)
            if predicate(event):
                return seen


def test_list_socket_announces_new_conversations_and_their_answers(
    client, worker, viewer, telegram_bot, fake_openai
):
    fake_openai.reply = "Forty-two."
    # A summary says what the conversation shows when it is sent (events are batched), so
    # an answer recorded before the batch goes out is in the first summary: the model waits
    # until the list has announced the user's message.
    fake_openai.hold()
    communicator = staff_socket(client, viewer, "/ws/console/")

    async def scenario():
        connected, _ = await communicator.connect()
        assert connected
        await in_thread(post_update, client, telegram_bot, private_text_update("meaning of life?"))
        events = await receive_until(communicator, lambda e: e["conversation"]["last_text"])
        fake_openai.release()
        events += await receive_until(
            communicator, lambda e: e["conversation"]["last_text"] == "Forty-two."
        )
        await communicator.disconnect()
        return events

    events = asyncio.run(scenario())

    assert all(event["type"] == "conversation" for event in events)
    first = events[0]["conversation"]
    conversation = Conversation.objects.get()
    assert first["id"] == conversation.pk
    assert first["bot"] == telegram_bot.name and first["platform"] == "telegram"
    assert first["user"] == "Ada Lovelace"
    assert first["last_text"] == "meaning of life?" and first["last_author"] == "user"
    assert first["state"] == "ai"
    assert events[-1]["conversation"]["last_author"] == "assistant"


def test_conversation_socket_streams_tokens_and_shows_takeover_to_other_staff(
    client, worker, viewer, operator, telegram_bot, fake_openai
):
    fake_openai.reply = "One two three four."
    fake_openai.chunk_size = 4
    post_update(client, telegram_bot, private_text_update("warm up"))
    conversation = _wait_conversation()
    watcher = staff_socket(client, viewer, f"/ws/console/conversations/{conversation.pk}/")

    async def scenario():
        connected, _ = await watcher.connect()
        assert connected
        snapshot = await watcher.receive_json_from()
        await in_thread(post_update, client, telegram_bot, private_text_update("count"))
        streamed = await receive_until(
            watcher,
            lambda e: (
                e["type"] == "message"
                and e["message"]["author"] == "assistant"
                and e["message"]["status"] == "delivered"
                and e["message"]["text"] == "One two three four."
                and e["message"]["id"] != snapshot_answer_id(snapshot)
            ),
        )
        response = await in_thread(take_over, client, operator, conversation)
        assert response.status_code == 302
        state = await receive_until(
            watcher,
            lambda e: e["type"] == "conversation" and e["conversation"]["state"] == "taken_over",
        )
        await watcher.disconnect()
        return snapshot, streamed, state

    snapshot, streamed, state = asyncio.run(scenario())

    assert snapshot["type"] == "snapshot"
    assert [m["text"] for m in snapshot["messages"]][0] == "warm up"
    tokens = [e["delta"] for e in streamed if e["type"] == "token"]
    assert "".join(tokens[-5:]) == "One two three four."
    assert state[-1]["conversation"]["handled_by"] == "operator"


def take_over(client, user, conversation):
    client.force_login(user)
    return client.post(f"/console/conversations/{conversation.pk}/take-over/")


def snapshot_answer_id(snapshot):
    answers = [m["id"] for m in snapshot["messages"] if m["author"] == "assistant"]
    return answers[-1] if answers else None


def _wait_conversation():
    from tests.fakes.server import wait_for

    return wait_for(
        lambda: Conversation.objects.filter(messages__status="delivered").distinct().first()
    )


IDLE_SECONDS = 30


def test_an_idle_socket_stays_open_and_still_gets_events(
    client, worker, viewer, telegram_bot, fake_openai, caplog
):
    """Nothing happens for 30 s, then a conversation starts: the same socket shows it.

    The channel layer waits for events with a blocking Redis pop (5 s at a time); a
    client read timeout no longer than that pop used to end every idle socket after
    about 5 s with "Timeout reading from <redis>".
    """
    fake_openai.reply = "Still here."
    communicator = staff_socket(client, viewer, "/ws/console/")

    async def scenario():
        connected, _ = await communicator.connect()
        assert connected
        assert await communicator.receive_nothing(timeout=IDLE_SECONDS)
        assert not communicator.future.done(), "the consumer ended while the socket was idle"
        await in_thread(post_update, client, telegram_bot, private_text_update("hello?"))
        events = await receive_until(
            communicator, lambda e: e["conversation"]["last_text"] == "Still here."
        )
        await communicator.disconnect()
        return events

    events = asyncio.run(scenario())

    # The console's summaries are batched: when the answer comes within one batch of the
    # question, the first row the socket gets already shows the answer.
    assert events[0]["conversation"]["last_text"] in ("hello?", "Still here.")
    assert {event["conversation"]["id"] for event in events} == {events[-1]["conversation"]["id"]}
    assert not [r for r in caplog.records if "Timeout reading" in r.getMessage()]
