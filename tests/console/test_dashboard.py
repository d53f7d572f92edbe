"""Dashboard numbers from known rows: counts, p50/p95 split, tokens, cost, errors, feedback."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from apps.conversations.choices import Author, Direction, MessageStatus, Rating
from apps.conversations.models import Conversation, Feedback, Message
from apps.conversations.selectors import dashboard_stats, percentile
from tests.factories import make_web_bot


def test_percentile_is_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0


def _answered_turn(conversation, *, now, model_seconds, wait_seconds, delivery_seconds, cost):
    received = now - timedelta(seconds=60)
    question = Message.objects.create(
        conversation=conversation,
        bot=conversation.bot,
        direction=Direction.IN,
        author=Author.USER,
        text="q",
        status=MessageStatus.ANSWERED,
        received_at=received,
    )
    started = received + timedelta(seconds=wait_seconds)
    done = started + timedelta(seconds=model_seconds)
    return Message.objects.create(
        conversation=conversation,
        bot=conversation.bot,
        direction=Direction.OUT,
        author=Author.ASSISTANT,
        text="a",
        status=MessageStatus.DELIVERED,
        reply_to=question,
        received_at=started,
        model_started_at=started,
        model_done_at=done,
        delivered_at=done + timedelta(seconds=delivery_seconds),
        prompt_tokens=10,
        completion_tokens=5,
        cost=Decimal(cost),
    )


def test_dashboard_stats_per_bot(web_bot):
    now = timezone.now()
    conversation = Conversation.objects.create(bot=web_bot, chat_id="v", chat_type="private")
    answers = [
        _answered_turn(
            conversation,
            now=now,
            model_seconds=seconds,
            wait_seconds=0.5,
            delivery_seconds=0.25,
            cost="0.010000",
        )
        for seconds in (1, 2, 3, 4)
    ]
    Message.objects.create(
        conversation=conversation,
        bot=web_bot,
        direction=Direction.IN,
        author=Author.USER,
        text="broken",
        status=MessageStatus.FAILED,
    )
    Feedback.objects.create(message=answers[0], rating=Rating.HELPFUL, platform_user_id="v")
    Feedback.objects.create(message=answers[1], rating=Rating.HELPFUL, platform_user_id="v")
    Feedback.objects.create(message=answers[2], rating=Rating.NOT_HELPFUL, platform_user_id="v")

    stats = dashboard_stats(days=7, now=now)

    [bot] = stats["bots"]
    assert bot["bot"] == web_bot.name
    # The chart counts what the table's "Received" counts: the 5 user messages, not answers.
    assert sum(bot["received_per_day"]) == bot["inbound"] == 5
    assert bot["model_p50"] == 2.0 and bot["model_p95"] == 4.0
    assert bot["overhead_p50"] == 0.75 and bot["overhead_p95"] == 0.75
    assert bot["prompt_tokens"] == 40 and bot["completion_tokens"] == 20
    assert bot["cost"] == 0.04
    assert bot["inbound"] == 5 and bot["failed"] == 1 and bot["error_rate"] == 0.2
    assert bot["helpful_ratio"] == 2 / 3


def test_dashboard_page_embeds_the_stats_for_the_charts(client, viewer, web_bot):
    conversation = Conversation.objects.create(bot=web_bot, chat_id="v", chat_type="private")
    Message.objects.create(
        conversation=conversation,
        bot=web_bot,
        direction=Direction.IN,
        author=Author.USER,
        text="hi",
        status=MessageStatus.RECEIVED,
    )
    client.force_login(viewer)

    response = client.get("/console/dashboard/", {"days": "3"})

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="dashboard-data"' in page and "console/charts.js" in page
    assert response.context["stats"]["bots"][0]["received_per_day"][-1] == 1
    assert len(response.context["stats"]["days"]) == 4


def test_each_day_counts_the_users_messages_received_that_day(web_bot):
    now = timezone.now()
    conversation = Conversation.objects.create(bot=web_bot, chat_id="v", chat_type="private")
    for days_ago, count in ((0, 2), (1, 3), (6, 1)):
        for _ in range(count):
            question = Message.objects.create(
                conversation=conversation,
                bot=web_bot,
                direction=Direction.IN,
                author=Author.USER,
                text="q",
                status=MessageStatus.ANSWERED,
                received_at=now - timedelta(days=days_ago),
            )
            Message.objects.create(  # answers and staff replies are not "received"
                conversation=conversation,
                bot=web_bot,
                direction=Direction.OUT,
                author=Author.ASSISTANT,
                text="a",
                status=MessageStatus.DELIVERED,
                reply_to=question,
                received_at=now - timedelta(days=days_ago),
            )
    Message.objects.create(  # before the period: counted nowhere
        conversation=conversation,
        bot=web_bot,
        direction=Direction.IN,
        author=Author.USER,
        text="old",
        status=MessageStatus.ANSWERED,
        received_at=now - timedelta(days=8),
    )

    stats = dashboard_stats(days=7, now=now)

    [bot] = stats["bots"]
    per_day = dict(zip(stats["days"], bot["received_per_day"], strict=True))
    today = timezone.localdate(now)
    assert per_day[today.isoformat()] == 2
    assert per_day[(today - timedelta(days=1)).isoformat()] == 3
    assert per_day[(today - timedelta(days=6)).isoformat()] == 1
    assert sum(per_day.values()) == bot["inbound"] == 6
    assert stats["days"][0] == timezone.localdate(now - timedelta(days=7)).isoformat()
    assert stats["days"][-1] == today.isoformat()


def test_bots_that_share_a_name_are_counted_apart(profile):
    """Two bots called the same (say, one per platform) are two rows, not one merged row."""
    now = timezone.now()
    first = make_web_bot(profile=profile, name="Helpdesk")
    second = make_web_bot(profile=profile, name="Helpdesk")
    for bot, questions, cost in ((first, 1, "0.010000"), (second, 3, "0.020000")):
        conversation = Conversation.objects.create(bot=bot, chat_id="v", chat_type="private")
        for _ in range(questions):
            _answered_turn(
                conversation,
                now=now,
                model_seconds=1,
                wait_seconds=0.5,
                delivery_seconds=0.25,
                cost=cost,
            )

    stats = dashboard_stats(days=7, now=now)

    rows = {row["bot_id"]: row for row in stats["bots"]}
    assert set(rows) == {str(first.pk), str(second.pk)}
    assert [row["bot"] for row in stats["bots"]] == ["Helpdesk", "Helpdesk"]
    assert rows[str(first.pk)]["inbound"] == 1 and rows[str(second.pk)]["inbound"] == 3
    assert sum(rows[str(second.pk)]["received_per_day"]) == 3
    assert rows[str(first.pk)]["cost"] == 0.01 and rows[str(second.pk)]["cost"] == 0.06
    assert rows[str(second.pk)]["answers"] == 3
