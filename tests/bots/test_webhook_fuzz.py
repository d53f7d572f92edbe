"""Property tests of the webhooks with valid credentials: random changes to real updates
never make a 5xx, a 4xx stores nothing, and a 2xx either stores or keeps the body."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.bots.models import UnprocessedEvent
from apps.conversations.choices import Direction
from apps.conversations.models import Message
from tests import feishu_events
from tests.feishu_events import VERIFICATION_TOKEN, message_event, post_event
from tests.telegram_updates import (
    callback_update,
    document_update,
    group_text_update,
    photo_update,
    post_update,
    private_text_update,
    voice_update,
)

fake_feishu = feishu_events.fake_feishu
feishu_bot = feishu_events.feishu_bot
plain_feishu_bot = feishu_events.plain_feishu_bot

# Values that broke the webhooks once, plus whatever hypothesis makes of JSON.
nasty_scalars = st.one_of(
    st.sampled_from(
        [None, True, 0, -1, 2**63, 10**30, 1e20, float("inf"), "", "\u0000", "\ud800", "x" * 300]
    ),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=50),
)
json_values = st.recursive(
    nasty_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated(draw, base: dict) -> dict:
    """`base` with a few of its fields replaced by odd values or removed."""
    payload = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(payload)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = payload
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            parent[path[-1]] = draw(json_values)
        elif isinstance(parent, dict):
            del parent[path[-1]]
    return payload


def _stored() -> int:
    # Users' messages only: the session's worker may be answering earlier examples.
    return Message.objects.filter(direction=Direction.IN).count()


def _check(response, messages_before: int, kept_before: int) -> None:
    assert response.status_code < 500, response.content
    messages = _stored()
    kept = UnprocessedEvent.objects.count()
    if response.status_code >= 400:
        assert (messages, kept) == (messages_before, kept_before)


TELEGRAM_BASES = [
    private_text_update("hello"),
    group_text_update("@assistant_test_bot hi", mention=True),
    photo_update("look"),
    voice_update(),
    document_update(),
    callback_update("a:helpful:1", chat_id=4242, message_id=1),
]
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same cases every run: a failure is reproducible, never flaky
)


@pytest.mark.django_db
@FUZZ
@given(data=st.data())
def test_telegram_webhook_never_answers_5xx(client, telegram_bot, data):
    base = data.draw(st.sampled_from(TELEGRAM_BASES))
    update = data.draw(mutated(base))
    messages_before, kept_before = _stored(), UnprocessedEvent.objects.count()

    response = post_update(client, telegram_bot, update)

    _check(response, messages_before, kept_before)


@pytest.mark.django_db
@FUZZ
@given(data=st.data())
def test_feishu_webhook_never_answers_5xx(client, plain_feishu_bot, data):
    base = message_event(token=VERIFICATION_TOKEN, text="hello")
    event = data.draw(mutated(base))
    messages_before, kept_before = _stored(), UnprocessedEvent.objects.count()

    response = post_event(client, plain_feishu_bot, event)

    _check(response, messages_before, kept_before)
