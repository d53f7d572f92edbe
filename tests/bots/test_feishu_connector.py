"""Feishu long connection: lark-oapi's real ws client against a loopback WebSocket fake.

The fake speaks the SDK's own protobuf frames (lark_oapi.ws.pb), so the path is the
production one: endpoint discovery, WebSocket, event frame, our handler, ingest, the
real worker, a reply card, and the handler's answer frame back to "Feishu".
"""

import threading

import pytest
from django.db import OperationalError
from lark_oapi.ws.exception import ClientException

from apps.bots.platforms.feishu.connector import FeishuConnector
from apps.bots.services import bot_create
from apps.conversations.choices import Direction, MessageStatus
from apps.conversations.models import Feedback, Message
from tests import feishu_events
from tests.fakes.feishu import FakeFeishuLongConnection
from tests.fakes.server import wait_for
from tests.feishu_events import card_action_event, message_event

fake_feishu = feishu_events.fake_feishu
feishu_bot = feishu_events.feishu_bot


@pytest.fixture
def long_connection(fake_feishu):
    server = FakeFeishuLongConnection().start()
    fake_feishu.ws_endpoint_answer = server.endpoint_answer()
    yield server
    server.stop()


@pytest.fixture
def running(feishu_bot, long_connection):
    """A FeishuConnector running in its own thread, as the supervisor runs it."""
    connector = FeishuConnector(feishu_bot)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run():
        try:
            connector.run(stop)
        except BaseException as error:  # noqa: BLE001 - reported to the test
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for(lambda: connector.status == "connected" and long_connection.connections)
    yield connector, stop, thread, errors
    stop.set()
    thread.join(10)


def delivered_answers():
    try:
        return list(Message.objects.filter(direction=Direction.OUT, status=MessageStatus.DELIVERED))
    except OperationalError:  # SQLite test database busy with the worker's write
        return []


def test_event_over_the_long_connection_is_answered(
    worker, feishu_bot, fake_feishu, fake_openai, long_connection, running
):
    connector, stop, thread, errors = running
    fake_openai.reply = "Answered over the long connection."
    # Long-connection events carry no verification token: the connection is authenticated.
    event = message_event(token="", text="hi there")

    frame_id = long_connection.push(event)

    answer = wait_for(lambda: long_connection.answer_to(frame_id))
    assert answer["code"] == 200
    wait_for(delivered_answers)
    cards = fake_feishu.cards()
    assert len(cards) == 1
    assert cards[0].text == "Answered over the long connection."
    assert cards[0].reply_to == event["event"]["message"]["message_id"]
    inbound = Message.objects.get(direction=Direction.IN)
    assert inbound.external_id == event["header"]["event_id"]
    assert connector.heartbeat is not None

    # Feishu re-sends events it thinks failed: the same event_id is not answered twice.
    again = long_connection.push(event)
    wait_for(lambda: long_connection.answer_to(again))
    assert Message.objects.filter(direction=Direction.IN).count() == 1

    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert errors == []
    wait_for(lambda: not long_connection.connections)
    assert connector.status == "stopped"


def test_card_button_over_the_long_connection_answers_with_a_toast(
    worker, feishu_bot, fake_feishu, fake_openai, long_connection, running
):
    first = long_connection.push(message_event(token="", text="hello"))
    wait_for(lambda: long_connection.answer_to(first))
    answer = wait_for(delivered_answers)[0]

    pressed = long_connection.push(
        card_action_event(token="", action="not_helpful", message_id=answer.pk)
    )

    reply = wait_for(lambda: long_connection.answer_to(pressed))
    assert reply["code"] == 200
    assert reply["data"] == {
        "toast": {"type": "info", "content": "Thanks, we'll use this to improve."}
    }
    feedback = Feedback.objects.get()
    assert (feedback.message_id, feedback.rating) == (answer.pk, "not_helpful")


@pytest.mark.django_db
def test_connectors_refused_by_feishu_raise_from_run(feishu_bot, fake_feishu):
    # Refused by Feishu (e.g. long connection not enabled for the app): a fatal error
    # that run() raises, so the supervisor backs off; two at once, as the supervisor runs them.
    fake_feishu.ws_endpoint_answer = {"code": 403, "msg": "long connection not enabled"}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        try:
            FeishuConnector(feishu_bot).run(threading.Event())
        except BaseException as error:  # noqa: BLE001 - reported to the test
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    assert len(errors) == 2
    assert all(isinstance(error, ClientException) for error in errors), errors
    calls = fake_feishu.calls_of("ws_endpoint")
    assert len(calls) == 2
    assert calls[0].body == {"AppID": feishu_bot.config["app_id"], "AppSecret": "app-secret"}


def test_two_connectors_in_threads_each_run_their_own_event_loop(
    worker, profile, feishu_bot, fake_feishu, long_connection
):
    # lark-oapi keeps one module-level event loop; without our per-thread loop the
    # receive loops would be scheduled on a loop nobody runs and nothing would arrive.
    other_bot = bot_create(
        name="feishu-second",
        platform="feishu",
        profile=profile,
        api_base_url=fake_feishu.url,
        config={
            "app_id": fake_feishu.app_id,
            "app_secret": fake_feishu.app_secret,
            "verification_token": "token",
        },
    )
    stops = [threading.Event(), threading.Event()]
    connectors = [FeishuConnector(feishu_bot), FeishuConnector(other_bot)]
    threads = [
        threading.Thread(target=connector.run, args=(stop,), daemon=True)
        for connector, stop in zip(connectors, stops, strict=True)
    ]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(long_connection.connections) == 2)
        frames = [
            long_connection.push(message_event(token="", chat_id=f"oc_{n}"), connection=n)
            for n in range(2)
        ]
        for frame in frames:
            assert wait_for(lambda frame=frame: long_connection.answer_to(frame))["code"] == 200
        wait_for(lambda: len(delivered_answers()) == 2)
        assert {m.bot_id for m in Message.objects.filter(direction=Direction.IN)} == {
            feishu_bot.pk,
            other_bot.pk,
        }
        assert len(fake_feishu.cards()) == 2
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(10)
    assert not any(thread.is_alive() for thread in threads)


def test_supervisor_runs_the_feishu_connector_and_stops_it_when_the_bot_is_disabled(
    worker, feishu_bot, fake_feishu, fake_openai, long_connection
):
    from apps.bots.connectors.supervisor import Supervisor

    feishu_bot.connection_mode = "persistent"
    feishu_bot.save(update_fields=["connection_mode", "updated_at"])
    stop = threading.Event()
    supervisor = Supervisor(reload_seconds=0.2)
    thread = threading.Thread(target=supervisor.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: long_connection.connections)
        frame = long_connection.push(message_event(token="", text="via the supervisor"))
        assert wait_for(lambda: long_connection.answer_to(frame))["code"] == 200
        wait_for(delivered_answers)
        assert len(fake_feishu.cards()) == 1

        feishu_bot.enabled = False
        feishu_bot.save(update_fields=["enabled", "updated_at"])

        wait_for(lambda: not long_connection.connections)
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()
