"""A/B variants and gray releases through the Feishu webhook and the web chat (the
Telegram webhook is covered in test_releases.py), with the real worker and the fake
model: a conversation keeps its variant and every answer records it, a release moves on
after its minimum sample of answers given on that platform, and thumbs down pressed on
that platform (Feishu card buttons, web chat feedback frames) roll a release back."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest
from django.test import Client

from apps.conversations.choices import Author, Direction, MessageStatus, Rating
from apps.conversations.models import Feedback, Message
from apps.routing.choices import ReleaseEvent, ReleaseState
from apps.routing.services import release_create, variant_create
from apps.routing.tasks import releases_evaluate_task
from tests import feishu_events
from tests.conversations.test_web_chat import communicator_for, receive_until
from tests.factories import make_profile
from tests.fakes.server import wait_for
from tests.feishu_events import VERIFICATION_TOKEN, card_action_event, message_event, post_event
from tests.routing.test_releases import _isolated  # noqa: F401 - a fixture

fake_feishu = feishu_events.fake_feishu
feishu_bot = feishu_events.feishu_bot


def _finished_answer(text: str) -> Message:
    def finished():
        return Message.objects.filter(
            reply_to__text=text,
            reply_to__direction=Direction.IN,
            direction=Direction.OUT,
            author=Author.ASSISTANT,
            status__in=[MessageStatus.DELIVERED, MessageStatus.FAILED],
        ).first()

    return wait_for(finished, timeout=60)


def _shown(sent) -> str:
    """What a message the bot put in a Feishu chat shows: a card's markdown or a text."""
    if sent.msg_type == "text":
        return json.loads(sent.versions[-1])["text"]
    return sent.text


class FeishuChats:
    """Users writing to the bot in their own Feishu p2p chats, one chat per `who`."""

    platform = "feishu"

    def __init__(self, client, bot, fake):
        self.client, self.bot, self.fake = client, bot, fake

    def say(self, text: str, *, who: str) -> Message:
        response = post_event(
            self.client,
            self.bot,
            message_event(
                token=VERIFICATION_TOKEN,
                text=text,
                chat_id=f"oc_{who}",
                sender_open_id=f"ou_{who}",
            ),
        )
        assert response.status_code == 200
        answer = _finished_answer(text)
        assert answer.status == MessageStatus.DELIVERED, answer.error
        wait_for(
            lambda: [
                card
                for card in self.fake.cards()
                if card.reply_to == answer.reply_to.platform_message_id
                and _shown(card) == answer.text
            ]
        )
        return answer

    def rate(self, answer: Message, rating: str, *, who: str) -> None:
        press = card_action_event(token=VERIFICATION_TOKEN, action=rating, message_id=answer.pk)
        press["event"]["operator"]["open_id"] = f"ou_{who}"
        press["event"]["context"]["open_chat_id"] = f"oc_{who}"
        response = post_event(self.client, self.bot, press)
        assert response.status_code == 200
        assert response.json()["toast"]["type"] == "info"  # the press was taken

    def user_id(self, who: str) -> str:
        return f"ou_{who}"


class WebVisitors:
    """Visitors of the bot's web chat, one browser session (so one conversation) per `who`."""

    platform = "web"

    def __init__(self, bot):
        self.bot = bot
        self.browsers: dict[str, Client] = {}
        self.frame_ids = itertools.count(1)
        # One event loop for every visit: the channel layer's connections belong to a loop.
        self.runner = asyncio.Runner()

    def _socket(self, who: str):
        return communicator_for(self.browsers.setdefault(who, Client()), self.bot)

    def say(self, text: str, *, who: str) -> Message:
        communicator = self._socket(who)
        frame_id = f"f{next(self.frame_ids)}"

        async def chat():
            connected, _ = await communicator.connect()
            assert connected
            await communicator.receive_json_from()  # the history
            await communicator.send_json_to({"type": "message", "id": frame_id, "text": text})
            events = await receive_until(
                communicator,
                lambda e: (
                    e["type"] == "message"
                    and e["message"]["author"] == "assistant"
                    and e["message"]["status"] == "delivered"
                ),
                timeout=60,
            )
            await communicator.disconnect()
            return events[-1]["message"]

        delivered = self.runner.run(chat())
        answer = Message.objects.get(pk=delivered["id"])
        assert answer.reply_to.text == text  # the answer to this frame, not an earlier one
        assert delivered["text"] == answer.text  # what the visitor saw is what was recorded
        return answer

    def rate(self, answer: Message, rating: str, *, who: str) -> None:
        communicator = self._socket(who)

        async def press():
            await communicator.connect()
            await communicator.receive_json_from()
            await communicator.send_json_to(
                {"type": "feedback", "message_id": answer.pk, "rating": rating}
            )
            events = await receive_until(
                communicator, lambda e: e["type"] in ("feedback_ok", "error")
            )
            await communicator.disconnect()
            return events[-1]

        reply = self.runner.run(press())
        assert reply == {"type": "feedback_ok", "message_id": answer.pk, "rating": rating}

    def user_id(self, who: str) -> str:
        return self.browsers[who].session["webchat_visitor"]


@pytest.fixture(params=["feishu", "web"])
def chats(request, client, profile):
    if request.param == "feishu":
        bot = request.getfixturevalue("feishu_bot")
        yield FeishuChats(client, bot, request.getfixturevalue("fake_feishu"))
        return
    visitors = WebVisitors(request.getfixturevalue("web_bot"))
    yield visitors
    visitors.runner.close()


@pytest.fixture
def profiles(profile, fake_openai):
    """Two profiles on the bots' provider; the fake model answers with the model's name."""
    provider = profile.provider
    provider.cooldown_after_failures = 1000
    provider.save()
    fake_openai.reply_for = lambda body: f"{body['model']} answers."
    return {
        "control": make_profile(provider=provider, model="control-model"),
        "candidate": make_profile(provider=provider, model="candidate-model"),
    }


def test_the_default_split_keeps_each_conversation_on_its_variant(
    worker, chats, fake_openai, profiles
):
    variants = {
        name: variant_create(bot=chats.bot, name=name, weight=1, profile=profile)
        for name, profile in profiles.items()
    }

    chosen: dict[str, str] = {}
    for number in itertools.count(1):
        # Web visitors are random ids: talk to new ones until both variants have answered.
        assert number <= 24, f"every conversation landed on {set(chosen.values())}"
        who = f"{chats.platform}-{number}"
        answers = [chats.say(f"{who} asks {turn}", who=who) for turn in range(2)]
        names = {answer.decision["variant"] for answer in answers}
        assert len(names) == 1, f"conversation {who} moved between {names}"
        [name] = names
        for answer in answers:
            assert answer.decision["variant_id"] == variants[name].pk
            assert answer.decision["rule_id"] is None  # the bot's default answer
            assert answer.profile_id == profiles[name].pk
            assert answer.text == f"{name}-model answers."  # the variant's model answered
        assert answers[0].conversation_id == answers[1].conversation_id
        chosen[who] = name
        if number >= 3 and set(chosen.values()) == set(variants):
            break

    models = [request["model"] for request in fake_openai.chat_requests()]
    assert models == [f"{chosen[who]}-model" for who in chosen for _turn in range(2)]
    assert Message.objects.filter(direction=Direction.OUT).values(
        "conversation"
    ).distinct().count() == len(chosen)


def _release(bot, profiles, **fields):
    control = variant_create(bot=bot, name="control", weight=100, profile=profiles["control"])
    candidate = variant_create(bot=bot, name="candidate", weight=0, profile=profiles["candidate"])
    release = release_create(name="candidate model", variant=candidate, control=control, **fields)
    return release, control, candidate


def test_a_release_moves_on_after_its_minimum_sample_and_completes(
    worker, chats, fake_openai, profiles
):
    release, control, candidate = _release(
        chats.bot, profiles, steps=[50, 100], min_sample=2, max_error_rate=0.5
    )
    assert releases_evaluate_task() == {}  # no answers yet

    on = {"control": [], "candidate": []}
    for number in itertools.count(1):
        assert number <= 40, f"the 50 % split did not give both variants their conversations: {on}"
        who = f"{chats.platform}-{number}"
        answer = chats.say(f"first from {who}", who=who)
        on[answer.decision["variant"]].append(who)
        if len(on["candidate"]) == 1 and answer.decision["variant"] == "candidate":
            assert releases_evaluate_task() == {}  # one answer is below the sample
        # A split at 50 % may give the candidate a third conversation before the first
        # control one (1 run in 8): go on until both are there, however many that takes.
        if len(on["candidate"]) >= 2 and on["control"]:
            break
    assert releases_evaluate_task() == {ReleaseEvent.ADVANCED: 1}
    release.refresh_from_db()
    assert (release.state, release.current_step, release.percent) == (ReleaseState.RUNNING, 1, 100)

    # At 100 % a conversation that had the control is the candidate's now.
    moved = chats.say("second from a control conversation", who=on["control"][0])
    assert moved.decision["variant"] == "candidate" and moved.text == "candidate-model answers."
    assert releases_evaluate_task() == {}  # one answer at 100 % is below the sample
    kept = chats.say("second from a candidate conversation", who=on["candidate"][0])
    assert kept.decision["variant"] == "candidate"
    assert releases_evaluate_task() == {ReleaseEvent.COMPLETED: 1}

    release.refresh_from_db()
    control.refresh_from_db()
    candidate.refresh_from_db()
    assert release.state == ReleaseState.COMPLETED
    assert (candidate.weight, control.weight) == (100, 0)
    assert list(release.history.values_list("event", "percent", "answers", "errors")) == [
        (ReleaseEvent.STARTED, 50, 0, 0),
        (ReleaseEvent.ADVANCED, 100, len(on["candidate"]), 0),
        (ReleaseEvent.COMPLETED, 100, 2, 0),
    ]


def test_thumbs_down_on_the_platform_roll_a_release_back(worker, chats, fake_openai, profiles):
    release, control, candidate = _release(
        chats.bot, profiles, steps=[100], min_sample=3, max_negative_rate=0.5
    )
    people = [f"{chats.platform}-rater-{n}" for n in range(2)]
    answers = [chats.say(f"rate me, says {who}", who=who) for who in people]
    assert [answer.decision["variant"] for answer in answers] == ["candidate", "candidate"]

    chats.rate(answers[0], Rating.NOT_HELPFUL, who=people[0])
    assert releases_evaluate_task() == {}  # 1 👎 of a sample of 3 is not above 50 %
    chats.rate(answers[1], Rating.NOT_HELPFUL, who=people[1])

    assert sorted(
        Feedback.objects.values_list("message_id", "rating", "platform_user_id")
    ) == sorted(
        (answer.pk, Rating.NOT_HELPFUL, chats.user_id(who))
        for answer, who in zip(answers, people, strict=True)
    )
    assert releases_evaluate_task() == {ReleaseEvent.ROLLED_BACK: 1}
    release.refresh_from_db()
    control.refresh_from_db()
    candidate.refresh_from_db()
    assert release.state == ReleaseState.ROLLED_BACK
    assert (control.weight, candidate.weight) == (100, 0)
    [rollback] = release.history.filter(event=ReleaseEvent.ROLLED_BACK)
    assert (rollback.answers, rollback.negative) == (2, 2)
    # The conversation that had the candidate is answered by the control again.
    again = chats.say("and now?", who=people[0])
    assert again.decision["variant"] == "control" and again.text == "control-model answers."
