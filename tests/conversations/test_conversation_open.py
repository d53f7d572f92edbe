"""conversation_open: one open conversation per chat, in plain SQL (apps.core.sql)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from apps.bots.platforms.base import InboundMessage
from apps.conversations.models import Conversation
from apps.conversations.services.ingest import conversation_open, message_ingest
from tests.factories import make_web_bot


def _inbound(chat: str, sender: str = "visitor", name: str = "访客", kind: str = "group"):
    return InboundMessage(
        external_id=f"{chat}-{sender}",
        chat_id=chat,
        chat_type=kind,
        sender_id=sender,
        sender_name=name,
        text="你好",
    )


@pytest.mark.django_db
def test_a_chat_keeps_its_open_conversation_and_who_wrote_in_it(django_assert_num_queries):
    bot = make_web_bot(profile=None)
    first = conversation_open(bot=bot, inbound=_inbound("chat-1", "a", "阿明"))
    again = conversation_open(bot=bot, inbound=_inbound("chat-1", "b", "Bea"))
    other = conversation_open(bot=bot, inbound=_inbound("chat-2", "a", "阿明"))

    assert again.pk == first.pk
    assert other.pk != first.pk
    stored = Conversation.objects.get(pk=first.pk)
    assert stored.participants == {"a": "阿明", "b": "Bea"}
    assert stored.chat_type == "group"
    assert stored.last_activity_at >= stored.started_at
    with django_assert_num_queries(0):  # the bot comes along: no query for it later
        assert again.bot == bot


@pytest.mark.django_db
def test_a_closed_conversation_is_not_reopened():
    bot = make_web_bot(profile=None)
    first = conversation_open(bot=bot, inbound=_inbound("chat-1"))
    Conversation.objects.filter(pk=first.pk).update(closed_at=timezone.now())

    second = conversation_open(bot=bot, inbound=_inbound("chat-1"))

    assert second.pk != first.pk
    assert Conversation.objects.filter(bot=bot, chat_id="chat-1", closed_at=None).get() == second


@pytest.mark.django_db
def test_inside_a_transaction_the_conversation_and_message_roll_back_with_it():
    bot = make_web_bot(profile=None)

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), transaction.atomic():
        assert message_ingest(bot=bot, inbound=_inbound("chat-1", kind="private")) is not None
        raise Abandon

    assert not Conversation.objects.filter(bot=bot).exists()


@pytest.mark.django_db(transaction=True)
def test_first_messages_of_a_chat_at_once_open_one_conversation():
    """Another process opens the chat's conversation between our SELECT and INSERT: our
    INSERT waits on its uncommitted row, fails on the unique constraint once it commits,
    and we take the conversation it opened."""
    if connection.vendor != "postgresql":
        pytest.skip("needs row locks of concurrent transactions (PostgreSQL)")
    bot = make_web_bot(profile=None)
    rival_inserted, rival_commit = threading.Event(), threading.Event()
    found: dict[str, object] = {}

    def rival() -> None:
        try:
            with transaction.atomic():
                now = timezone.now()
                found["rival"] = Conversation.objects.create(
                    bot=bot, chat_id="chat-1", chat_type="group", participants={"r": "R"},
                    started_at=now, last_activity_at=now,
                )  # fmt: skip
                found["rival_backend"] = connection.connection.info.backend_pid
                rival_inserted.set()
                assert rival_commit.wait(30)
        finally:
            connections.close_all()

    def ours() -> None:
        try:
            found["ours"] = conversation_open(bot=bot, inbound=_inbound("chat-1", "o", "O"))
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            found["error"] = error
        finally:
            connections.close_all()

    rival_thread = threading.Thread(target=rival)
    rival_thread.start()
    assert rival_inserted.wait(30)
    our_thread = threading.Thread(target=ours)
    our_thread.start()
    # Our INSERT is blocked behind the rival's transaction (what pg_locks says), then it goes.
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND %s = ANY(pg_blocking_pids(pid))",
                [found["rival_backend"]],
            )
            if cursor.fetchone()[0]:
                break
            assert time.monotonic() < deadline, "our INSERT never waited on the rival's row"
            assert our_thread.is_alive(), found
    rival_commit.set()
    rival_thread.join(30)
    our_thread.join(30)

    assert "error" not in found, found.get("error")
    assert found["ours"].pk == found["rival"].pk
    assert Conversation.objects.filter(bot=bot, chat_id="chat-1").count() == 1
    assert Conversation.objects.get(pk=found["rival"].pk).participants == {"r": "R", "o": "O"}
