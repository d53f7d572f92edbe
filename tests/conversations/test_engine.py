"""The turn engine: many turns at once per worker process, streaming that never holds up
the model, and time-outs that measure the model rather than a busy worker."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.engine import STREAMS_KEY, streams_elsewhere, turn_engine
from apps.conversations.models import Conversation, Message
from apps.conversations.services.delivery import delivery_lock_key, message_deliver
from apps.conversations.services.dispatch import turn_lock_key
from apps.conversations.services.turns import streamed_remember
from apps.conversations.tasks import sweep_stuck_task
from apps.core.aio import process_loop
from apps.core.liveness import liveness, taken_key
from apps.core.redis import get_redis
from apps.providers.client import ChatMessage, stream_reply
from tests.factories import last_beat, make_recorded_answer, make_user_message
from tests.fakes.server import wait_for
from tests.telegram_updates import post_update, private_text_update

WORKER_THREADS = 8  # tests/conftest.py's celery_session_worker


def delivered_answers(count: int, timeout: float = 90):
    def rows():
        found = list(
            Message.objects.filter(
                direction=Direction.OUT,
                author=Author.ASSISTANT,
                status=MessageStatus.DELIVERED,
            )
        )
        return found if len(found) >= count else None

    return wait_for(rows, timeout=timeout)


def test_one_worker_answers_many_conversations_at_the_same_time(
    client, worker, telegram_bot, fake_telegram, fake_openai, profile
):
    profile.first_token_timeout = 30
    profile.save()
    # Every answer waits 3 s for its first token: answers can only be quick together.
    fake_openai.first_token_delay = 3.0
    fake_openai.reply_for = lambda body: "answer to " + body["messages"][-1]["content"]
    users = range(1001, 1041)
    for user_id in users:
        post_update(client, telegram_bot, private_text_update(f"u{user_id}", user_id=user_id))

    answers = delivered_answers(len(users))

    assert len(answers) == len(users)
    # Far more model streams were open at once than the worker has threads.
    assert fake_openai.max_in_flight > 2 * WORKER_THREADS
    for user_id in users:
        [shown] = fake_telegram.chat(user_id)  # exactly one message per chat: no duplicate
        assert shown.text == f"answer to u{user_id}"


def test_slow_chat_updates_are_coalesced_and_never_hold_up_the_model(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    words = [f"word{number}" for number in range(60)]
    fake_openai.reply = " ".join(words)
    fake_openai.chunk_size = 6  # about 70 pieces
    fake_openai.chunk_delay = 0.03
    # Each Bot API call takes longer than the pace between updates.
    fake_telegram.delays = {"sendMessage": 1.2, "editMessageText": 1.2}
    post_update(client, telegram_bot, private_text_update("count"))

    [answer] = delivered_answers(1)

    pieces = len(fake_openai.reply) // fake_openai.chunk_size
    updates = [
        call
        for call in fake_telegram.calls
        if call.method in ("sendMessage", "editMessageText") and call.params.get("chat_id")
    ]
    [shown] = fake_telegram.chat(4242)
    assert shown.text == fake_openai.reply == answer.text
    assert len(fake_telegram.sent("sendMessage")) == 1
    # The latest text wins: a handful of updates for tens of pieces, one at a time.
    assert len(updates) < pieces / 5
    for before, after in zip(updates, updates[1:], strict=False):
        assert after.started >= before.finished


@pytest.mark.parametrize("streams_at_full_pace", [30, 1])
def test_answers_stream_at_the_platforms_pace_and_crowded_ones_arrive_whole(
    client, worker, telegram_bot, fake_telegram, fake_openai, settings, streams_at_full_pace
):
    settings.ENGINE_STREAMS_AT_FULL_PACE = streams_at_full_pace
    fake_openai.reply = "a short answer in a few pieces"
    fake_openai.chunk_delay = 0.2  # eight pieces: written in over a second
    users = range(2001, 2007)
    fake_openai.hold()  # every answer's text comes when all of them stream
    for user_id in users:
        post_update(client, telegram_bot, private_text_update(f"u{user_id}", user_id=user_id))
    wait_for(lambda: fake_openai.in_flight == len(users))
    fake_openai.release()

    delivered_answers(len(users))

    for user_id in users:
        [shown] = fake_telegram.chat(user_id)
        assert shown.text == fake_openai.reply
    sends = [c for c in fake_telegram.sent("sendMessage") if c.params.get("chat_id")]
    edits = fake_telegram.sent("editMessageText")
    assert len(sends) == len(users)
    if streams_at_full_pace >= len(users):
        # Few answers at once: each chat sees its text as soon as there is some, and the
        # whole answer in an edit of that message.
        assert len(edits) >= len(users)
    else:
        # More at once than the pace allows: the first update waits (six answers, pace
        # for one: about five seconds), and "typing…" (six seconds), so these short
        # answers come whole, one call each.
        assert edits == []
        assert fake_telegram.sent("sendChatAction") == []


def test_a_crowd_is_counted_across_worker_processes():
    """Platforms limit a bot, not a process: each process says every second how many
    answers it streams and paces its own by the sum. (A key of the test's own: this
    process's engine keeps saying its number in STREAMS_KEY.)"""
    key = STREAMS_KEY + ":test"

    def say(process_id: str, streams: int) -> int:
        return process_loop.run(streams_elsewhere(process_id, streams, key=key))

    assert say("host:1:a", 12) == 0
    assert say("host:2:b", 7) == 12
    assert say("host:1:a", 3) == 7
    # A process that stopped saying its number long ago (killed) is left out, and forgotten.
    get_redis().hset(key, "host:3:gone", "40:1000.5")
    assert say("host:2:b", 7) == 3
    assert not get_redis().hexists(key, "host:3:gone")


def test_a_busy_worker_does_not_blame_the_model(profile, fake_openai):
    profile.first_token_timeout = 1.0
    profile.save()
    fake_openai.first_token_delay = 0.1

    def freeze_the_loop(body):
        # The worker's loop is stuck (CPU-bound work, a long GC) for longer than the
        # first-token timeout, just after sending the request; the model answers in time.
        process_loop.loop.call_soon_threadsafe(time.sleep, 2.5)
        return None

    fake_openai.reply_for = freeze_the_loop
    health_key = f"assistant:provider:{profile.provider_id}:health"
    get_redis().delete(health_key)

    reply = stream_reply(
        profile=profile, messages=[ChatMessage("user", "hello")], on_delta=lambda delta: None
    )

    assert reply.text == fake_openai.reply
    assert [attempt["outcome"] for attempt in reply.attempts] == ["answered"]
    assert int(get_redis().hget(health_key, "failures") or 0) == 0


def left_by_a_killed_worker(telegram_bot, fake_telegram, *, shown_recorded: bool, started_at=None):
    """What a worker killed mid-answer leaves: the user's message `processing` since
    `started_at` (by default two minutes ago: its lock expired) and a partial answer shown
    in the chat, its message id recorded in the database (`shown_recorded`) or, when the
    worker died before that, only noted in Redis.
    Returns (question, lost answer, the chat message showing the partial answer)."""
    chat = 4242
    started = started_at or timezone.now() - timedelta(minutes=2)
    asked = make_user_message(
        bot=telegram_bot,
        chat_id=str(chat),
        text="tell me a story",
        external_id="update-1",
        status=MessageStatus.PROCESSING,
        model_started_at=started,
    )
    conversation = asked.conversation
    shown = fake_telegram.put_message(chat, "Once upon a")
    lost = Message.objects.create(
        conversation=conversation,
        bot=telegram_bot,
        direction=Direction.OUT,
        author=Author.ASSISTANT,
        reply_to=asked,
        status=MessageStatus.PROCESSING,
        platform_message_id=str(shown) if shown_recorded else "",
        model_started_at=started,
    )
    if not shown_recorded:
        process_loop.run(streamed_remember(lost.pk, str(shown)))
    return asked, lost, shown


def test_a_turn_a_dead_worker_left_is_answered_once_by_finishing_its_partial_message(
    worker, telegram_bot, fake_telegram, fake_openai
):
    asked, lost, shown = left_by_a_killed_worker(telegram_bot, fake_telegram, shown_recorded=True)
    fake_openai.reply = "Once upon a time there was a test. The end."

    sweep_stuck_task.delay()

    [answer] = delivered_answers(1)
    assert answer.text == fake_openai.reply and answer.reply_to == asked
    # One message in the chat: the partial one, edited into the full answer.
    [message] = fake_telegram.chat(4242)
    assert message.message_id == shown and message.text == fake_openai.reply
    assert answer.platform_message_id == str(shown)
    lost.refresh_from_db()
    assert lost.status == MessageStatus.FAILED and lost.platform_message_id == ""
    asked.refresh_from_db()
    assert asked.status == MessageStatus.ANSWERED


def test_a_partial_message_shown_but_not_yet_recorded_is_finished_not_repeated(
    worker, telegram_bot, fake_telegram, fake_openai
):
    _asked, _lost, shown = left_by_a_killed_worker(
        telegram_bot, fake_telegram, shown_recorded=False
    )
    fake_openai.reply = "Once upon a time there was a test. The end."

    sweep_stuck_task.delay()

    [answer] = delivered_answers(1)
    [message] = fake_telegram.chat(4242)
    assert message.message_id == shown and message.text == fake_openai.reply
    assert answer.platform_message_id == str(shown)


def test_a_late_loop_takes_no_new_turn_until_it_catches_up(
    settings, transactional_db, telegram_bot
):
    settings.ENGINE_ADMIT_LAG_SECONDS = 0.1
    conversation = Conversation.objects.create(bot=telegram_bot, chat_id="77", chat_type="private")
    frozen, thawed = threading.Event(), threading.Event()

    def freeze() -> None:  # CPU-bound work, a long GC: the loop runs nothing else meanwhile
        frozen.set()
        thawed.wait(30)

    process_loop.loop.call_soon_threadsafe(freeze)
    assert frozen.wait(10)
    wait_for(lambda: process_loop.lag_now() > 0.2, timeout=10)
    # A Celery thread hands over a turn: it waits, and the task stays unacknowledged in the
    # queue meanwhile, where another worker process could take it.
    handing_over = threading.Thread(target=turn_engine.submit, args=(conversation.pk,))
    handing_over.start()
    handing_over.join(0.5)
    assert handing_over.is_alive()
    assert conversation.pk not in turn_engine.running

    thawed.set()
    handing_over.join(10)
    assert not handing_over.is_alive()
    process_loop.run(turn_engine.drain(), timeout=30)
    assert conversation.pk not in turn_engine.running


DEAD_WORKER = "worker-host:4242:5eadbeef"  # a process id whose heartbeat stopped


def test_what_a_worker_that_just_died_had_taken_is_answered_at_once(
    worker, telegram_bot, fake_telegram, fake_openai
):
    # Seconds after a kill -9: the dead worker's locks have not expired, and its messages
    # are not old enough for the sweeper's time-outs, but its heartbeat is gone.
    now = timezone.now()
    asked, lost, shown = left_by_a_killed_worker(
        telegram_bot, fake_telegram, shown_recorded=True, started_at=now
    )
    # A second conversation's task was taken from the queue (prefetched), never started.
    queued = make_user_message(
        bot=telegram_bot,
        chat_id="4343",
        text="hello?",
        external_id="update-4343",
        status=MessageStatus.RECEIVED,
    )
    redis = get_redis()
    last_beat(DEAD_WORKER, settings.PROCESS_ALIVE_SECONDS + 1)
    redis.sadd(taken_key(DEAD_WORKER), asked.conversation_id, queued.conversation_id)
    redis.set(
        turn_lock_key(asked.conversation_id), f"{DEAD_WORKER}/0123", ex=settings.TURN_LOCK_SECONDS
    )
    fake_openai.reply_for = lambda body: (
        "Once upon a time there was a test. The end."
        if "story" in body["messages"][-1]["content"]
        else "Hello!"
    )

    assert sweep_stuck_task.apply().get() == {"turns": 2, "deliveries": 0}

    assert not redis.exists(taken_key(DEAD_WORKER))
    delivered_answers(2)
    # The partial answer is finished in place; the waiting message is answered once.
    [message] = fake_telegram.chat(4242)
    assert message.message_id == shown
    assert message.text == "Once upon a time there was a test. The end."
    [hello] = fake_telegram.chat(4343)
    assert hello.text == "Hello!"
    queued.refresh_from_db()
    assert queued.status == MessageStatus.ANSWERED


def test_a_message_that_reached_a_worker_as_it_died_is_answered_at_once(
    worker, telegram_bot, fake_telegram, fake_openai
):
    # Its task reached the worker in the milliseconds before the kill, after the worker's
    # last note of what it took: nothing says so but its time.
    now = timezone.now()
    last_beat("worker-host:4747:0dd0dead", settings.PROCESS_ALIVE_SECONDS + 1)
    at_the_kill = make_user_message(
        bot=telegram_bot,
        chat_id="4747",
        status=MessageStatus.RECEIVED,
        received_at=now - timedelta(seconds=settings.PROCESS_ALIVE_SECONDS + 0.5),
    )
    # Written seconds after it died: its task is in the queue, for a live worker.
    later = make_user_message(
        bot=telegram_bot, chat_id="4848", status=MessageStatus.RECEIVED, received_at=now
    )
    fake_openai.reply = "Here now."

    assert sweep_stuck_task.apply().get() == {"turns": 1, "deliveries": 0}
    assert sweep_stuck_task.apply().get() == {"turns": 0, "deliveries": 0}  # once

    delivered_answers(1)
    [message] = fake_telegram.chat(4747)
    assert message.text == "Here now."
    at_the_kill.refresh_from_db()
    assert at_the_kill.status == MessageStatus.ANSWERED
    assert fake_telegram.chat(4848) == []
    later.refresh_from_db()
    assert later.status == MessageStatus.RECEIVED


def test_an_answer_whose_delivering_worker_just_died_is_delivered_at_once(
    worker, telegram_bot, fake_telegram
):
    answer = make_recorded_answer(bot=telegram_bot, chat_id="4444", text="Recorded, not yet sent.")
    last_beat(DEAD_WORKER, settings.PROCESS_ALIVE_SECONDS + 1)
    get_redis().set(
        delivery_lock_key(answer.pk), f"{DEAD_WORKER}/0123", ex=settings.TURN_LOCK_SECONDS
    )

    assert sweep_stuck_task.apply().get() == {"turns": 0, "deliveries": 1}

    wait_for(lambda: Message.objects.filter(pk=answer.pk, status=MessageStatus.DELIVERED).exists())
    [shown] = fake_telegram.chat(4444)
    assert shown.text == "Recorded, not yet sent."


def test_a_live_process_keeps_what_it_took_and_its_locks(worker, telegram_bot):
    other = "other-host:99:0ddba11"  # another worker process, beating
    last_beat(other, -30)  # as if it kept beating every second while the test runs
    locks = {}
    for chat, owner in (("4545", liveness.id), ("4646", other)):
        conversation = make_user_message(
            bot=telegram_bot,
            chat_id=chat,
            status=MessageStatus.PROCESSING,
            model_started_at=timezone.now(),
        ).conversation
        get_redis().sadd(taken_key(owner), conversation.pk)
        locks[turn_lock_key(conversation.pk)] = f"{owner}/0123"
    get_redis().mset(locks)

    assert sweep_stuck_task.apply().get() == {"turns": 0, "deliveries": 0}

    assert [get_redis().get(key).decode() for key in locks] == list(locks.values())
    assert get_redis().exists(taken_key(other))


def test_a_turn_that_cannot_take_its_lock_while_redis_restarts_is_answered_once_it_is_back(
    client, worker, telegram_bot, fake_telegram, fake_openai, redis_unreachable, caplog
):
    fake_openai.reply = "Answered after the restart."
    post_update(client, telegram_bot, private_text_update("hello", user_id=5151))
    # The worker's turn finds Redis (its locks) out of reach and asks for the turn again.
    wait_for(lambda: "no turn lock" in caplog.text)

    redis_unreachable.restore()

    [answer] = delivered_answers(1)
    assert answer.text == "Answered after the restart."
    [shown] = fake_telegram.chat(5151)
    assert shown.text == "Answered after the restart."


def test_a_delivery_that_cannot_take_its_lock_is_asked_for_again(
    worker, telegram_bot, fake_telegram, redis_unreachable, caplog
):
    answer = make_recorded_answer(
        bot=telegram_bot, chat_id="5252", text="Recorded while Redis restarted."
    )

    assert message_deliver(message_id=answer.pk) is None
    assert "no delivery lock" in caplog.text
    answer.refresh_from_db()
    assert answer.status == MessageStatus.ANSWERED and fake_telegram.chat(5252) == []

    redis_unreachable.restore()

    wait_for(lambda: Message.objects.filter(pk=answer.pk, status=MessageStatus.DELIVERED).exists())
    [shown] = fake_telegram.chat(5252)
    assert shown.text == "Recorded while Redis restarted."
