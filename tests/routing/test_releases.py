"""A/B variants and gray releases through the real pipeline (Telegram webhook, the real
worker, the fake model): a conversation keeps its variant, many conversations split by
the weights, a release moves on after its minimum sample and rolls back when its answers
fail, every step audited, and the dashboard compares the variants."""

from __future__ import annotations

import math
import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.conversations.choices import Author, Direction, MessageStatus, Rating
from apps.conversations.models import Feedback, Message
from apps.core.redis import get_redis
from apps.core.roles import OPERATOR, REVIEWER, roles_sync
from apps.routing.choices import ReleaseEvent, ReleaseState
from apps.routing.models import Release
from apps.routing.services import release_create, routing_rule_create, variant_create
from apps.routing.tasks import releases_evaluate_task
from tests.factories import make_profile
from tests.fakes.server import wait_for
from tests.telegram_updates import post_update, private_text_update


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.MODEL_OUTAGE_WAIT_SECONDS = 0  # a failed model call fails the answer at once
    redis = get_redis()
    for pattern in ("assistant:provider:*", "assistant:answer-cache:*", "assistant:deliver:*"):
        keys = list(redis.scan_iter(pattern))
        if keys:
            redis.delete(*keys)


@pytest.fixture
def profiles(telegram_bot):
    """Two profiles on the bot's provider, told apart by their model's name."""
    provider = telegram_bot.profile.provider
    provider.cooldown_after_failures = 1000  # these tests count failures, not cooldowns
    provider.save()
    return {
        "control": make_profile(provider=provider, model="control-model"),
        "candidate": make_profile(provider=provider, model="candidate-model"),
    }


def say(client, bot, text: str, *, user_id: int) -> Message:
    """Send `text` from `user_id`'s private chat; its finished answer (delivered or failed)."""
    post_update(client, bot, private_text_update(text, user_id=user_id))

    def finished():
        return Message.objects.filter(
            reply_to__text=text,
            reply_to__direction=Direction.IN,
            direction=Direction.OUT,
            author=Author.ASSISTANT,
            status__in=[MessageStatus.DELIVERED, MessageStatus.FAILED],
        ).first()

    return wait_for(finished, timeout=60)


def test_a_conversation_keeps_its_variant_and_each_answer_records_it(
    client, worker, telegram_bot, fake_telegram, fake_openai, profiles
):
    rule = routing_rule_create(name="everything", action="profile")
    variants = {
        name: variant_create(rule=rule, name=name, weight=1, profile=profile)
        for name, profile in profiles.items()
    }

    chosen = {}
    for user_id in (7001, 7002, 7003, 7004):
        answers = [
            say(client, telegram_bot, f"{user_id} asks {n}", user_id=user_id) for n in range(3)
        ]
        names = {answer.decision["variant"] for answer in answers}
        assert len(names) == 1, f"conversation of {user_id} moved between {names}"
        [name] = names
        for answer in answers:
            assert answer.status == MessageStatus.DELIVERED
            assert answer.decision["variant_id"] == variants[name].pk
            assert answer.decision["rule_id"] == rule.pk
            assert answer.profile_id == profiles[name].pk  # the variant's profile answered
        chosen[user_id] = name
    models = [request["model"] for request in fake_openai.chat_requests()]
    assert models == [f"{chosen[user_id]}-model" for user_id in chosen for _n in range(3)]


def test_many_conversations_split_by_the_weights(
    client, worker, telegram_bot, fake_telegram, fake_openai, profiles
):
    # The bot's default answer (no rule) split 1 : 3.
    variant_create(bot=telegram_bot, name="control", weight=1, profile=profiles["control"])
    variant_create(bot=telegram_bot, name="candidate", weight=3, profile=profiles["candidate"])
    conversations = 60

    answers = [
        say(client, telegram_bot, f"hello from {user_id}", user_id=user_id)
        for user_id in range(8000, 8000 + conversations)
    ]

    assert all(answer.decision["rule_id"] is None for answer in answers)
    candidate = sum(answer.decision["variant"] == "candidate" for answer in answers)
    # Binomial: the expected share and three standard deviations around it. The hash is
    # deterministic, so this never flakes; an even split (30) or none (0, 60) is outside.
    share = 3 / 4
    expected = conversations * share
    tolerance = 3 * math.sqrt(conversations * share * (1 - share))
    assert expected - tolerance <= candidate <= expected + tolerance, candidate


def _release(telegram_bot, profiles, **fields):
    control = variant_create(
        bot=telegram_bot, name="control", weight=100, profile=profiles["control"]
    )
    candidate = variant_create(
        bot=telegram_bot, name="candidate", weight=0, profile=profiles["candidate"]
    )
    release = release_create(name="candidate model", variant=candidate, control=control, **fields)
    return release, control, candidate


def test_a_release_moves_on_after_its_minimum_sample_and_completes(
    client, worker, telegram_bot, fake_telegram, fake_openai, profiles
):
    release, control, candidate = _release(
        telegram_bot, profiles, steps=[50, 100], min_sample=2, max_error_rate=0.5
    )

    assert releases_evaluate_task() == {}  # no answers yet: it stays at 50 %
    release.refresh_from_db()
    assert (release.state, release.percent) == (ReleaseState.RUNNING, 50)

    seen = {"control": 0, "candidate": 0}
    user_id = 9000
    while seen["candidate"] < 2:
        user_id += 1
        assert user_id < 9060, "no conversation landed on the candidate at 50 %"
        seen[
            say(client, telegram_bot, f"first {user_id}", user_id=user_id).decision["variant"]
        ] += 1
        if seen["candidate"] == 1:
            assert releases_evaluate_task() == {}  # one answer is below the sample
    assert releases_evaluate_task() == {ReleaseEvent.ADVANCED: 1}
    release.refresh_from_db()
    assert (release.state, release.current_step, release.percent) == (ReleaseState.RUNNING, 1, 100)

    # At 100 % every conversation, new or old, is the candidate's.
    later = [
        say(client, telegram_bot, f"later {n}", user_id=user_id)
        for n, user_id in enumerate((9001, 9101))
    ]
    assert [answer.decision["variant"] for answer in later] == ["candidate", "candidate"]
    assert releases_evaluate_task() == {ReleaseEvent.COMPLETED: 1}

    release.refresh_from_db()
    control.refresh_from_db()
    candidate.refresh_from_db()
    assert release.state == ReleaseState.COMPLETED
    assert (candidate.weight, control.weight) == (100, 0)  # the candidate took the share
    history = list(release.history.values_list("event", "percent", "answers", "errors"))
    assert history == [
        (ReleaseEvent.STARTED, 50, 0, 0),
        (ReleaseEvent.ADVANCED, 100, 2, 0),  # moved to 100 % after 2 answers at 50 %
        (ReleaseEvent.COMPLETED, 100, 2, 0),
    ]
    events = AuditEvent.objects.filter(target_type="routing.release", target_id=str(release.pk))
    assert list(events.order_by("id").values_list("action", flat=True)) == [
        "release.started",
        "release.advanced",
        "release.completed",
    ]
    assert AuditEvent.objects.filter(
        action="variant.update", target_id=str(candidate.pk), changes__weight={"from": 0, "to": 100}
    ).exists()
    assert releases_evaluate_task() == {}  # a finished release is left alone


def test_a_release_rolls_back_when_its_answers_fail(
    client, worker, telegram_bot, fake_telegram, fake_openai, profiles
):
    release, control, candidate = _release(
        telegram_bot, profiles, steps=[100], min_sample=4, max_error_rate=0.25
    )

    fake_openai.fail(500, times=3)  # the provider is tried three times per answer
    assert say(client, telegram_bot, "one", user_id=9501).status == MessageStatus.FAILED
    assert say(client, telegram_bot, "two", user_id=9502).status == MessageStatus.DELIVERED
    assert releases_evaluate_task() == {}  # 1 failure in a sample of 4 is not above 25 %

    fake_openai.fail(500, times=3)
    failed = say(client, telegram_bot, "three", user_id=9503)
    assert failed.status == MessageStatus.FAILED and failed.decision["variant"] == "candidate"
    assert releases_evaluate_task() == {ReleaseEvent.ROLLED_BACK: 1}  # 2 of 4: above 25 %

    release.refresh_from_db()
    control.refresh_from_db()
    candidate.refresh_from_db()
    assert release.state == ReleaseState.ROLLED_BACK
    assert (control.weight, candidate.weight) == (100, 0)
    [rollback] = release.history.filter(event=ReleaseEvent.ROLLED_BACK)
    assert (rollback.answers, rollback.errors) == (3, 2)
    event = AuditEvent.objects.get(action="release.rolled_back", target_id=str(release.pk))
    assert event.actor is None and event.changes["errors"] == 2
    assert event.changes["state"] == ReleaseState.ROLLED_BACK
    # Everyone is back on the control, the conversations that had the candidate too.
    again = say(client, telegram_bot, "four", user_id=9503)
    assert again.decision["variant"] == "control" and again.profile_id == profiles["control"].pk
    assert Release.objects.get(pk=release.pk).state == ReleaseState.ROLLED_BACK


def test_the_dashboard_compares_the_variants(
    client, worker, telegram_bot, fake_telegram, fake_openai, profiles, django_user_model
):
    rule = routing_rule_create(name="split", action="profile")
    variant_create(rule=rule, name="control", weight=1, profile=profiles["control"])
    variant_create(rule=rule, name="candidate", weight=1, profile=profiles["candidate"])
    answers = [say(client, telegram_bot, f"q{n}", user_id=9600 + n) for n in range(8)]
    fake_openai.fail(500, times=3)
    failed = say(client, telegram_bot, "fails", user_id=9650)
    Feedback.objects.create(message=answers[0], rating=Rating.NOT_HELPFUL, platform_user_id="9600")
    Feedback.objects.create(message=answers[1], rating=Rating.HELPFUL, platform_user_id="9601")
    reviewer = django_user_model.objects.create_user("reviewer", is_staff=True)
    roles_sync()
    reviewer.groups.add(Group.objects.get(name=REVIEWER))
    client.force_login(reviewer)

    page = client.get("/console/dashboard/", {"split": f"rule:{rule.pk}"})

    assert page.status_code == 200
    html = page.content.decode()
    table = html[html.index('id="variant-table"') :]
    for name in ("control", "candidate"):
        mine = [a for a in [*answers, failed] if a.decision["variant"] == name]
        row = re.search(rf'<tr data-variant="{name}">(.*?)</tr>', table, re.S).group(1)
        cells = [
            re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td.*?</td>", row, re.S)
        ]
        failures = sum(a.status == MessageStatus.FAILED for a in mine)
        ratings = [
            Feedback.objects.filter(message__in=mine, rating=rating).count()
            for rating in (Rating.HELPFUL, Rating.NOT_HELPFUL)
        ]
        assert cells[0] == name
        assert cells[1] == profiles[name].name  # what the variant answers with
        assert int(cells[3]) == len(mine)  # answers
        assert int(cells[4]) == failures
        assert cells[8] == f"{ratings[0]} / {ratings[1]}"
        tokens = (
            sum(a.prompt_tokens or 0 for a in mine),
            sum(a.completion_tokens or 0 for a in mine),
        )
        assert cells[9] == f"{tokens[0]} / {tokens[1]}"
    assert '<select name="split">' in html and f'value="rule:{rule.pk}" selected' in html


def test_two_thumbs_down_roll_a_release_back(
    client, worker, telegram_bot, fake_telegram, fake_openai, profiles
):
    release, control, candidate = _release(
        telegram_bot, profiles, steps=[100], min_sample=2, max_negative_rate=0.5
    )
    answers = [say(client, telegram_bot, f"rate me {n}", user_id=9800 + n) for n in range(2)]
    for answer in answers:
        Feedback.objects.create(message=answer, rating=Rating.NOT_HELPFUL, platform_user_id="1")

    assert releases_evaluate_task() == {ReleaseEvent.ROLLED_BACK: 1}

    release.refresh_from_db()
    candidate.refresh_from_db()
    assert release.state == ReleaseState.ROLLED_BACK and candidate.weight == 0
    [rollback] = release.history.filter(event=ReleaseEvent.ROLLED_BACK)
    assert (rollback.answers, rollback.negative) == (2, 2)
    assert "Negative-feedback rate 2/2" in rollback.reason


def test_staff_pause_and_resume_a_release_in_the_admin(
    db, telegram_bot, profiles, django_user_model
):
    release, _control, _candidate = _release(telegram_bot, profiles, steps=[5, 100], min_sample=1)
    operator = django_user_model.objects.create_user("operator", is_staff=True)
    roles_sync()
    operator.groups.add(Group.objects.get(name=OPERATOR))
    admin = Client()
    admin.force_login(operator)
    url = reverse("admin:routing_release_changelist")

    admin.post(url, {"action": "pause_releases", "_selected_action": [release.pk]})
    release.refresh_from_db()
    assert release.state == ReleaseState.PAUSED
    assert releases_evaluate_task() == {}  # a paused release is not evaluated
    admin.post(url, {"action": "resume_releases", "_selected_action": [release.pk]})

    release.refresh_from_db()
    assert release.state == ReleaseState.RUNNING
    events = AuditEvent.objects.filter(target_id=str(release.pk), action__startswith="release.")
    assert [(e.action, e.actor) for e in events.order_by("id")] == [
        ("release.started", None),
        ("release.paused", operator),
        ("release.resumed", operator),
    ]
    page = admin.get(reverse("admin:routing_release_change", args=[release.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r'<td class="field-event">.*?</td>', html, re.S)
    ] == ["Started", "Paused", "Resumed"]  # the history


def test_the_api_refuses_a_control_of_another_rule_or_bot(db, telegram_bot, profiles, staff_user):
    rule = routing_rule_create(name="other", action="profile")
    control = variant_create(rule=rule, name="control", weight=1, profile=profiles["control"])
    candidate = variant_create(
        bot=telegram_bot, name="candidate", weight=0, profile=profiles["candidate"]
    )
    api = APIClient()
    api.force_authenticate(staff_user)

    response = api.post(
        "/api/v1/releases/",
        {"name": "x", "variant": candidate.pk, "control": control.pk, "steps": [5, 100]},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert "control" in response.json()
    assert not Release.objects.exists()


def test_which_rule_answers_this_shows_the_variant(db, telegram_bot, profiles, staff_user):
    variant_create(bot=telegram_bot, name="only", weight=1, profile=profiles["candidate"])
    variant_create(bot=telegram_bot, name="never", weight=0, profile=profiles["control"])
    admin = Client()
    admin.force_login(staff_user)

    page = admin.get(
        reverse("admin:routing_routingrule_explain"),
        {"bot": telegram_bot.pk, "chat_type": "private", "chat_id": "42", "text": "hello"},
    )

    assert page.status_code == 200
    cell = re.search(r'<td id="decision-variant">(.*?)</td>', page.content.decode()).group(1)
    assert cell == "only"
