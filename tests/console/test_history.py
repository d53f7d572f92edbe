"""History search and the streamed CSV / JSONL exports, over rows built like the pipeline does."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.conversations.choices import Author, Direction, MessageStatus, Rating
from apps.conversations.models import Conversation, Feedback, Message
from tests.factories import make_telegram_bot


def _message(conversation, direction, author, text, status, **fields):
    return Message.objects.create(
        conversation=conversation,
        bot=conversation.bot,
        direction=direction,
        author=author,
        text=text,
        status=status,
        **fields,
    )


@pytest.fixture
def chats(web_bot, profile):
    """Three conversations: a rated web chat, a failed Telegram chat, an old web chat."""
    telegram_bot = make_telegram_bot(profile=profile, api_base_url="http://127.0.0.1:9")
    now = timezone.now()
    rated = Conversation.objects.create(
        bot=web_bot, chat_id="visitor-1", chat_type="private", participants={"visitor-1": "Ada"}
    )
    question = _message(rated, Direction.IN, Author.USER, "What is a monad?", "answered")
    answer = _message(
        rated,
        Direction.OUT,
        Author.ASSISTANT,
        "A monoid in the category of endofunctors.",
        MessageStatus.DELIVERED,
        reply_to=question,
        profile=profile,
        prompt_tokens=20,
        completion_tokens=9,
    )
    Feedback.objects.create(message=answer, rating=Rating.NOT_HELPFUL, platform_user_id="visitor-1")
    _message(rated, Direction.IN, Author.USER, "Simpler please", "answered")
    good = _message(
        rated, Direction.OUT, Author.ASSISTANT, "A way to chain steps.", MessageStatus.DELIVERED
    )
    Feedback.objects.create(message=good, rating=Rating.HELPFUL, platform_user_id="visitor-1")

    failed = Conversation.objects.create(
        bot=telegram_bot, chat_id="4242", chat_type="private", participants={"4242": "Grace"}
    )
    _message(
        failed,
        Direction.IN,
        Author.USER,
        'Hello, "quoted", comma',
        MessageStatus.FAILED,
        sender_id="4242",
    )
    _message(failed, Direction.OUT, Author.SYSTEM, "Sorry, I could not answer.", "delivered")

    old = Conversation.objects.create(
        bot=web_bot,
        chat_id="visitor-2",
        chat_type="private",
        participants={"visitor-2": "Linus"},
        started_at=now - timedelta(days=40),
        last_activity_at=now - timedelta(days=40),
    )
    _message(old, Direction.IN, Author.USER, "old question", "answered")
    _message(old, Direction.OUT, Author.STAFF, "old staff answer", "delivered", sender_id="ops")
    return {"rated": rated, "failed": failed, "old": old, "telegram_bot": telegram_bot}


def _ids(client, **query):
    response = client.get("/console/history/", query)
    assert response.status_code == 200
    return {row["id"] for row in response.context["rows"]}


def test_history_filters(client, viewer, chats, web_bot):
    client.force_login(viewer)
    rated, failed, old = chats["rated"].pk, chats["failed"].pk, chats["old"].pk

    assert _ids(client) == {rated, failed, old}
    assert _ids(client, bot=str(web_bot.pk)) == {rated, old}
    assert _ids(client, platform="telegram") == {failed}
    assert _ids(client, user="Grace") == {failed}
    assert _ids(client, user="4242") == {failed}
    assert _ids(client, text="MONAD") == {rated}
    assert _ids(client, rating="not_helpful") == {rated}
    assert _ids(client, rating="helpful") == {rated}
    assert _ids(client, rating="none") == {failed, old}
    assert _ids(client, failed="on") == {failed}
    since = (timezone.now() - timedelta(days=7)).date().isoformat()
    assert _ids(client, date_from=since) == {rated, failed}
    assert _ids(client, date_to=(timezone.now() - timedelta(days=30)).date().isoformat()) == {old}


def test_transcript_shows_profile_tokens_latency_and_feedback(client, viewer, chats, profile):
    client.force_login(viewer)
    rated = chats["rated"]
    answer = rated.messages.get(text__startswith="A monoid")
    start = timezone.now()
    Message.objects.filter(pk=answer.pk).update(
        model_started_at=start,
        first_token_at=start + timedelta(milliseconds=250),
        model_done_at=start + timedelta(seconds=2),
        delivered_at=start + timedelta(seconds=2, milliseconds=500),
    )

    response = client.get(f"/console/history/{rated.pk}/")

    assert response.status_code == 200
    row = next(r for r in response.context["rows"] if r["message"].pk == answer.pk)
    assert row["latency"]["first_token"] == pytest.approx(0.25)
    assert row["latency"]["model"] == pytest.approx(2.0)
    assert row["latency"]["delivery"] == pytest.approx(0.5)
    assert row["not_helpful"] == 1 and row["helpful"] == 0
    page = response.content.decode()
    assert profile.name in page and "20/9" in page and "0.25 s" in page


def _streamed(response) -> str:
    assert response.status_code == 200
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def test_csv_export_of_the_filtered_set(client, viewer, chats):
    client.force_login(viewer)

    text = _streamed(client.get("/console/history/export.csv", {"platform": "telegram"}))

    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["text"] for row in rows] == [
        'Hello, "quoted", comma',
        "Sorry, I could not answer.",
    ]
    assert rows[0]["user"] == "Grace" and rows[0]["status"] == "failed"
    assert rows[0]["bot"] == chats["telegram_bot"].name


def test_csv_export_carries_ratings_and_tokens(client, viewer, chats):
    client.force_login(viewer)

    rows = list(csv.DictReader(io.StringIO(_streamed(client.get("/console/history/export.csv")))))

    by_text = {row["text"]: row for row in rows}
    answer = by_text["A monoid in the category of endofunctors."]
    assert answer["rating"] == "not_helpful"
    assert answer["prompt_tokens"] == "20" and answer["completion_tokens"] == "9"
    assert by_text["A way to chain steps."]["rating"] == "helpful"


def test_jsonl_export_is_chat_fine_tuning_format(client, viewer, chats):
    client.force_login(viewer)

    response = client.get("/console/history/export.jsonl")

    lines = [json.loads(line) for line in _streamed(response).splitlines()]
    assert response["Content-Disposition"].endswith('.jsonl"')
    # The failed chat has no answer worth learning from; the not-helpful turn is dropped.
    assert lines == [
        {
            "messages": [
                {"role": "user", "content": "Simpler please"},
                {"role": "assistant", "content": "A way to chain steps."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "old question"},
                {"role": "assistant", "content": "old staff answer"},
            ]
        },
    ]


def test_unknown_export_format_is_404(client, viewer):
    client.force_login(viewer)
    assert client.get("/console/history/export.xml").status_code == 404


def test_console_list_filters_by_bot_platform_and_feedback(client, viewer, chats, web_bot):
    client.force_login(viewer)
    rated, failed, old = chats["rated"].pk, chats["failed"].pk, chats["old"].pk

    def ids(**query):
        response = client.get("/console/", query)
        assert response.status_code == 200
        return [row["id"] for row in response.context["rows"]]

    assert ids() == [failed, rated, old]  # newest activity first
    assert ids(platform="telegram") == [failed]
    assert ids(bot=str(web_bot.pk)) == [rated, old]
    assert ids(rating="not_helpful") == [rated]
    rows = client.get("/console/").context["rows"]
    assert {row["id"]: row["state"] for row in rows}[failed] == "failed"
    assert {row["id"]: (row["helpful"], row["not_helpful"]) for row in rows}[rated] == (1, 1)
    assert client.get("/console/", {"bot": "not-a-uuid"}).status_code == 404
