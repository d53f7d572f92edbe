"""apps.core.sql: the hot path's plain statements give what the ORM gives."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.conversations.models import Conversation
from apps.core.sql import row_insert, rows_exist, rows_where
from tests.factories import make_web_bot


def _conversation(bot, chat: str, **fields) -> Conversation:
    now = timezone.now()
    return Conversation.objects.create(
        bot=bot, chat_id=chat, chat_type="private", participants={"u": "用户"},
        started_at=now, last_activity_at=now, **fields,
    )  # fmt: skip


@pytest.mark.django_db
def test_rows_where_matches_none_as_is_null_and_lists_as_in():
    bot = make_web_bot(profile=None)
    open_one = _conversation(bot, "a")
    closed = _conversation(bot, "a", closed_at=timezone.now())
    other = _conversation(bot, "b")

    assert {c.pk for c in rows_where(Conversation, {"bot": bot.pk, "closed_at": None})} == {
        open_one.pk,
        other.pk,
    }
    assert [c.pk for c in rows_where(Conversation, {"chat_id": "a", "closed_at": None})] == [
        open_one.pk
    ]
    assert {c.pk for c in rows_where(Conversation, {"chat_id": ["a", "b"]})} == {
        open_one.pk,
        closed.pk,
        other.pk,
    }
    assert len(rows_where(Conversation, {"bot": bot}, limit=2)) == 2
    assert rows_exist(Conversation, {"chat_id": "b", "closed_at": None})
    assert not rows_exist(Conversation, {"chat_id": "c"})


@pytest.mark.django_db
def test_rows_where_and_row_insert_round_trip_values_as_the_orm_does():
    bot = make_web_bot(profile=None)
    now = timezone.now()
    inserted = row_insert(
        Conversation(
            bot=bot,
            chat_id="漢字",
            chat_type="group",
            participants={"1": "阿明", "2": None},
            started_at=now,
            last_activity_at=now,
        )  # fmt: skip
    )

    (found,) = rows_where(Conversation, {"pk": inserted.pk})
    by_orm = Conversation.objects.get(pk=inserted.pk)
    for field in Conversation._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(by_orm, field.attname), field.name
    assert found.participants == {"1": "阿明", "2": None}
    assert found.started_at == now
    assert found._state.adding is False
