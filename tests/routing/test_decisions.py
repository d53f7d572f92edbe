"""Routing decides everything a turn does, end to end through the Telegram and Feishu
webhooks and the web chat with the real worker: staff holding a conversation, the daily
token budgets (refusals told apart by `decision.failure`, never by text), a hand-off that
notifies the console live, and variants that are skills, answering their sticky share."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import math
import re
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.bots.services import bot_update
from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Conversation, Message
from apps.conversations.services import turns
from apps.conversations.services.console import conversation_take_over
from apps.core.redis import get_redis
from apps.routing.engine import route
from apps.routing.models import Release, Variant
from apps.routing.selectors import ruleset_get, variant_comparison
from apps.routing.services import release_sample, routing_rule_create, variant_create
from apps.routing.variants import owner_key, sticky_point
from apps.skills.services import skill_instance_create
from tests.console.conftest import console_group, staff_socket
from tests.conversations.test_web_chat import communicator_for, receive_until
from tests.fakes.server import wait_for
from tests.feishu_events import (  # noqa: F401 - fixtures
    VERIFICATION_TOKEN,
    card_action_event,
    fake_feishu,
    feishu_bot,
    message_event,
    post_event,
)
from tests.telegram_updates import callback_update, post_update, private_text_update
from tests.threads import in_thread

PLATFORMS = ["telegram", "feishu", "web"]
MENU_TITLE = "Menu from the skill variant"
_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    redis = get_redis()
    for pattern in ("assistant:provider:*", "assistant:answer-cache:*", "assistant:deliver:*"):
        keys = list(redis.scan_iter(pattern))
        if keys:
            redis.delete(*keys)


def _staff(django_user_model, name: str, group: str):
    user = django_user_model.objects.create_user(name, password=f"{name}-password-1", is_staff=True)
    user.groups.add(console_group(group))
    return user


@pytest.fixture
def watcher(django_user_model, transactional_db):
    """Staff who may watch conversations in the console."""
    return _staff(django_user_model, "watcher", "Console viewers")


@pytest.fixture
def operator(django_user_model, transactional_db):
    """Staff who may take conversations over, and manage routing (the Operator role)."""
    from django.contrib.auth.models import Group

    from apps.core.roles import OPERATOR, roles_sync

    user = _staff(django_user_model, "operator", "Console operators")
    roles_sync()
    user.groups.add(Group.objects.get(name=OPERATOR))
    return user


class Chat:
    """One user's private chat with `bot` through its platform's real way in: the Telegram
    or Feishu webhook, or the web chat's websocket (each web user has their own session)."""

    def __init__(self, platform: str, bot, client):
        self.platform, self.bot = platform, bot
        number = next(_numbers)
        self.telegram_user = 61000 + number
        self.feishu_chat, self.feishu_user = f"oc_decide_{number}", f"ou_decide_{number}"
        self.client = Client() if platform == "web" else client

    def send(self, text: str) -> None:
        if self.platform == "telegram":
            post_update(
                self.client, self.bot, private_text_update(text, user_id=self.telegram_user)
            )
        elif self.platform == "feishu":
            event = message_event(
                token=VERIFICATION_TOKEN,
                text=text,
                chat_id=self.feishu_chat,
                sender_open_id=self.feishu_user,
            )
            assert post_event(self.client, self.bot, event).status_code == 200
        else:
            self._web_frame({"type": "message", "id": uuid.uuid4().hex, "text": text})

    def regenerate(self, answer: Message) -> None:
        """Press "regenerate" under `answer`, as the user would."""
        if self.platform == "telegram":
            press = callback_update(
                f"a:regenerate:{answer.pk}",
                chat_id=self.telegram_user,
                user_id=self.telegram_user,
                message_id=int(answer.platform_message_id),
            )
            post_update(self.client, self.bot, press)
        elif self.platform == "feishu":
            event = card_action_event(
                token=VERIFICATION_TOKEN,
                action="regenerate",
                message_id=answer.pk,
                chat_id=self.feishu_chat,
            )
            assert post_event(self.client, self.bot, event).status_code == 200
        else:
            self._web_frame({"type": "regenerate", "message_id": answer.pk})

    def _web_frame(self, frame: dict) -> None:
        asyncio.run(self._web_exchange(frame))

    async def _web_exchange(self, frame: dict) -> None:
        """Open the visitor's chat page and socket, send one frame, wait for its answer."""
        communicator = await in_thread(communicator_for, self.client, self.bot)
        connected, _ = await communicator.connect()
        assert connected
        await communicator.receive_json_from()  # the history
        await communicator.send_json_to(frame)
        done = await receive_until(
            communicator, lambda e: e["type"] in ("ack", "regenerate_ok", "error")
        )
        await communicator.disconnect()
        assert done[-1]["type"] != "error", done[-1]

    async def send_from_loop(self, text: str) -> None:
        """`send()` from a running event loop (one loop may use the channel layer at a time)."""
        if self.platform == "web":
            await self._web_exchange({"type": "message", "id": uuid.uuid4().hex, "text": text})
        else:
            await in_thread(self.send, text)

    def answer(self, text: str) -> Message:
        """The delivered reply (the model's, a skill's or a fixed one) to this chat's `text`."""

        def find():
            inbound = (
                Message.objects.filter(direction=Direction.IN, text=text, bot=self.bot)
                .order_by("-id")
                .first()
            )
            if inbound is None:
                return None
            return Message.objects.filter(
                reply_to=inbound, direction=Direction.OUT, status=MessageStatus.DELIVERED
            ).first()

        return wait_for(find, timeout=60)

    def ask(self, text: str) -> Message:
        self.send(text)
        return self.answer(text)


def bot_for(request, platform: str):
    return request.getfixturevalue(f"{platform}_bot")


# Budgets --------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_budget_refusals_are_decided_by_the_engine_and_told_by_their_code(
    request, client, worker, fake_telegram, fake_openai, platform
):
    bot = bot_for(request, platform)
    bot_update(bot=bot, user_daily_token_budget=10)
    ada, bob, carol = (Chat(platform, bot, client) for _ in range(3))

    first = ada.ask("first question")
    refused = ada.ask("second question")
    other = bob.ask("hello from bob")
    bot_update(bot=bot, daily_token_budget=10)
    bot_refused = carol.ask("carol has not asked anything yet")

    # The first answer is the model's and uses more than the user's 10 tokens.
    assert first.author == Author.ASSISTANT and first.decision["failure"] == ""
    assert first.prompt_tokens + first.completion_tokens > 10
    assert refused.author == Author.SYSTEM
    assert refused.text == str(turns.USER_BUDGET_REPLY)
    assert refused.decision["failure"] == "user_budget"
    assert refused.decision["action"] == "profile"
    assert "of their 10 tokens today" in refused.decision["reason"]
    inbound = refused.reply_to
    assert inbound.status == MessageStatus.ANSWERED
    assert inbound.decision["failure"] == "user_budget"
    # Another user of the same bot is not limited by Ada's use.
    assert other.author == Author.ASSISTANT and other.decision["failure"] == ""
    # Then the bot's own budget: even a user who has used nothing is refused, with the
    # bot's code and reply.
    assert bot_refused.text == str(turns.BOT_BUDGET_REPLY)
    assert bot_refused.decision["failure"] == "bot_budget"
    assert bot_refused.reply_to.decision["failure"] == "bot_budget"
    assert len(fake_openai.chat_requests()) == 2


def test_a_used_up_budget_refuses_only_answers_by_a_model(
    client, worker, telegram_bot, fake_telegram, fake_openai, watcher
):
    bot_update(bot=telegram_bot, daily_token_budget=0)
    routing_rule_create(
        name="hours", keywords=["hours"], action="reply", reply_template="9:00–18:00."
    )
    menu = skill_instance_create(
        bot=telegram_bot, name="Menu", skill="help_menu", config={"title": MENU_TITLE}
    )
    routing_rule_create(name="menu", command="/menu", action="skill", skill_instance=menu)
    chat = Chat("telegram", telegram_bot, client)

    fixed = chat.ask("what are your hours")
    skill = chat.ask("/menu please")
    model = chat.ask("tell me a story")

    # A fixed reply and a skill use no tokens: the budget does not stop them.
    assert fixed.text == "9:00–18:00." and fixed.decision["failure"] == ""
    assert skill.text.startswith(MENU_TITLE) and skill.decision["failure"] == ""
    assert model.decision["failure"] == "bot_budget"
    assert model.text == str(turns.BOT_BUDGET_REPLY)
    assert fake_openai.chat_requests() == []
    # Staff see the refusal in words in the transcript, and its code in the export.
    client.force_login(watcher)
    page = client.get(f"/console/history/{model.conversation_id}/").content.decode()
    assert re.search(
        r'<div class="failure" data-failure="bot_budget">The bot&#x27;s daily token budget '
        r"is used up</div>",
        page,
    )
    export = b"".join(client.get("/console/history/export.csv").streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(export)))
    refused = [row for row in rows if row["routing_failure"] == "bot_budget"]
    assert [row["direction"] for row in refused] == ["in", "out"]
    assert all(row["routing_failure"] == "" for row in rows if row not in refused)


def test_budgets_cost_one_query_whatever_is_set(db, telegram_bot, django_assert_num_queries):
    conversation = Conversation.objects.create(
        bot=telegram_bot, chat_id="4242", chat_type="private"
    )
    message = Message.objects.create(
        conversation=conversation,
        bot=telegram_bot,
        direction=Direction.IN,
        author=Author.USER,
        sender_id="4242",
        text="hello",
    )
    message.has_attachments = False  # as the turn's claim reads it
    ruleset_get()  # compiled once per process, not per decision
    assert telegram_bot.profile is not None  # loaded with the bot, as the cached config is
    telegram_bot.daily_token_budget = 1000
    telegram_bot.user_daily_token_budget = 100

    with django_assert_num_queries(1):
        decision = route(conversation=conversation, pending=[message])
    assert decision.failure == ""

    telegram_bot.daily_token_budget = telegram_bot.user_daily_token_budget = None
    with django_assert_num_queries(0):
        assert route(conversation=conversation, pending=[message]).failure == ""


# Staff hold the conversation --------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_taken_over_conversation_is_not_answered_even_when_the_user_regenerates(
    request, client, worker, fake_telegram, fake_openai, operator, platform
):
    bot = bot_for(request, platform)
    chat = Chat(platform, bot, client)
    answer = chat.ask("what is the plan")
    conversation_take_over(conversation_id=answer.conversation_id, actor=operator)

    # Regenerating reopens the question without passing through ingest: the engine's
    # decision is what keeps the AI silent now that staff have the conversation.
    chat.regenerate(answer)

    inbound = wait_for(
        lambda: Message.objects.filter(pk=answer.reply_to_id, status=MessageStatus.SKIPPED).first(),
        timeout=60,
    )
    assert inbound.error == "staff took over"
    assert inbound.decision["failure"] == "taken_over"
    assert inbound.decision["action"] == "handoff"
    assert inbound.decision["rule_id"] is None
    assert len(fake_openai.chat_requests()) == 1
    assert not Message.objects.filter(direction=Direction.OUT).exclude(pk=answer.pk).exists()
    # What the user writes now is kept for staff with the same decision, and no turn starts.
    chat.send("hello? anyone?")
    later = wait_for(
        lambda: Message.objects.filter(text="hello? anyone?", status=MessageStatus.SKIPPED).first(),
        timeout=60,
    )
    assert later.decision["failure"] == "taken_over"
    assert len(fake_openai.chat_requests()) == 1


# Hand-off: the console is told ----------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_hand_off_notifies_staff_in_the_console_until_someone_takes_it(
    request, client, worker, fake_telegram, fake_openai, watcher, operator, platform
):
    bot = bot_for(request, platform)
    routing_rule_create(name="humans", keywords=["人工", "human"], action="handoff")
    chat = Chat(platform, bot, client)
    console = staff_socket(Client(), watcher, "/ws/console/")
    staff = Client()
    staff.force_login(operator)

    async def scenario():
        connected, _ = await console.connect()
        assert connected
        await chat.send_from_loop("I need a human now")
        notified = await receive_until(console, lambda e: e["type"] == "handoff")
        waiting = await receive_until(
            console,
            lambda e: e["type"] == "conversation" and e["conversation"]["state"] == "waiting",
        )
        page = await in_thread(staff.get, "/console/")
        conversation_id = notified[-1]["conversation_id"]
        taken = await in_thread(staff.post, f"/console/conversations/{conversation_id}/take-over/")
        assert taken.status_code == 302
        after = await receive_until(
            console,
            lambda e: e["type"] == "conversation" and e["conversation"]["state"] == "taken_over",
        )
        await console.disconnect()
        return notified[-1], waiting[-1]["conversation"], page, after[-1]["conversation"]

    notice, summary, page, taken = asyncio.run(scenario())

    conversation = Conversation.objects.get(bot=bot)
    assert notice == {
        "type": "handoff",
        "conversation_id": conversation.pk,
        "bot": bot.name,
        "user": summary["user"],
        "rule": "humans",
        "text": "I need a human now",
    }
    assert summary["id"] == conversation.pk and summary["handled_by"] == ""
    assert str(summary["state_label"]) == "Waiting for staff"
    # The console's list shows it waiting, with the count in the navigation.
    html = page.content.decode()
    assert re.search(rf'<tr data-id="{conversation.pk}" data-state="waiting">', html)
    badge = re.search(r'<span class="waiting-badge" id="waiting-badge"[^>]*>([^<]*)</span>', html)
    assert badge and "hidden" not in badge.group(0) and badge.group(1) == "1 waiting"
    # Taken: nobody waits any more.
    assert taken["handled_by"] == "operator"
    after = staff.get("/console/").content.decode()
    assert re.search(r'<span class="waiting-badge" id="waiting-badge"[^>]*hidden', after)
    notice_reply = chat.answer("I need a human now")
    assert notice_reply.text == str(turns.HANDOFF_REPLY)
    assert fake_openai.chat_requests() == []


def test_the_visitor_does_not_receive_the_staff_notice(client, worker, web_bot, fake_openai):
    routing_rule_create(name="humans", keywords=["human"], action="handoff")
    visitor = communicator_for(client, web_bot)

    async def scenario():
        await visitor.connect()
        await visitor.receive_json_from()
        await visitor.send_json_to({"type": "message", "id": "h1", "text": "a human please"})
        seen = await receive_until(
            visitor,
            lambda e: (
                e["type"] == "message"
                and e["message"]["author"] == "system"
                and e["message"]["status"] == "delivered"
            ),
        )
        await visitor.disconnect()
        return seen

    seen = asyncio.run(scenario())

    assert seen[-1]["message"]["text"] == str(turns.HANDOFF_REPLY)
    assert [event for event in seen if event["type"] == "handoff"] == []


# Variants that are skills -----------------------------------------------------------------


def test_a_skill_variant_answers_its_sticky_share_of_the_conversations(
    client, worker, telegram_bot, fake_telegram, fake_openai, watcher
):
    chats = [Chat("telegram", telegram_bot, client) for _ in range(6)]
    for number, chat in enumerate(chats):
        chat.ask(f"hello {number}")  # before any variant: the bot's profile
    owner = owner_key(bot_id=telegram_bot.pk)
    points = sorted(
        (sticky_point(owner=owner, conversation=str(conversation.pk)), conversation.pk)
        for conversation in Conversation.objects.filter(bot=telegram_bot)
    )
    # The skill variant (created first, so first in the split) gets a share ending between
    # the third and fourth conversations' fixed points: three conversations each, whatever
    # ids the database gave them.
    scale = 10**6
    skill_weight = math.floor(points[2][0] * scale) + 1
    assert points[2][0] < skill_weight / scale <= points[3][0]
    menu = skill_instance_create(
        bot=telegram_bot, name="Menu", skill="help_menu", config={"title": MENU_TITLE}
    )
    skill_variant = variant_create(
        bot=telegram_bot, name="menu", weight=skill_weight, skill_instance=menu
    )
    model_variant = variant_create(
        bot=telegram_bot,
        name="model",
        weight=scale - skill_weight,
        profile=telegram_bot.profile,
    )
    started = timezone.now() - timedelta(seconds=1)

    answers = {
        chat: [chat.ask(f"question {number}.{turn}") for turn in range(2)]
        for number, chat in enumerate(chats)
    }

    skill_conversations = {pk for _point, pk in points[:3]}
    for chat_answers in answers.values():
        [conversation_id] = {answer.conversation_id for answer in chat_answers}
        for answer in chat_answers:
            if conversation_id in skill_conversations:
                assert answer.author == Author.SYSTEM
                assert answer.text.startswith(MENU_TITLE)
                assert answer.decision["action"] == "skill"
                assert answer.decision["variant"] == "menu"
                assert answer.decision["variant_id"] == skill_variant.pk
                assert answer.decision["skill_instance_id"] == menu.pk
                assert answer.decision["skill"] == "help_menu"
                assert answer.attempts[0]["outcome"] == "answered"
            else:
                assert answer.author == Author.ASSISTANT
                assert answer.decision["variant"] == "model"
                assert answer.decision["variant_id"] == model_variant.pk
    assert len(fake_openai.chat_requests()) == 6 + 6  # the greetings, then the model's share
    # The release statistics and the dashboard count the skill's answers too.
    sample = release_sample(release=Release(variant=skill_variant, step_started_at=started))
    assert (sample.answers, sample.errors, sample.negative) == (6, 0, 0)
    rows = {row["variant"]: row for row in variant_comparison(owner=owner)}
    assert rows["menu"]["answers"] == 6 and rows["menu"]["failed"] == 0 and rows["menu"]["skill"]
    assert rows["menu"]["answers_with"] == "Menu (help_menu)"
    assert rows["model"]["answers"] == 6 and not rows["model"]["skill"]
    assert rows["model"]["completion_tokens"] > 0
    client.force_login(watcher)
    html = client.get("/console/dashboard/", {"split": owner}).content.decode()
    row = re.search(r'<tr data-variant="menu">(.*?)</tr>', html, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td.*?</td>", row, re.S)]
    assert cells[:5] == ["menu", "skill: Menu (help_menu)", str(skill_weight), "6", "0"]
    assert cells[6:] == ["—"] * 5  # no model times, feedback, tokens or cost for a skill


@pytest.mark.parametrize("platform", ["feishu", "web"])
def test_a_rules_skill_variant_answers_and_a_failed_skill_counts_as_an_error(
    request, client, worker, fake_telegram, fake_openai, platform
):
    bot = bot_for(request, platform)
    orders = routing_rule_create(
        name="orders", keywords=["订单"], action="profile", bots=[bot]
    )  # fmt: skip
    desk = skill_instance_create(
        bot=bot, name="Order desk", skill="help_menu", config={"title": "订单服务"}
    )
    skill_variant = variant_create(rule=orders, name="desk", weight=1, skill_instance=desk)
    variant_create(rule=orders, name="model", weight=0, profile=bot.profile)
    chat = Chat(platform, bot, client)

    first = chat.ask("我的订单呢")
    second = chat.ask("订单号是 42")
    desk.enabled = False  # the skill can no longer run: its answers fail, clearly
    desk.save(update_fields=["enabled"])
    failed = chat.ask("订单还没到")
    other = chat.ask("hello")

    for answer in (first, second):
        assert answer.text.startswith("订单服务")
        assert answer.decision["rule"] == "orders"
        assert answer.decision["variant_id"] == skill_variant.pk
        assert answer.decision["action"] == "skill"
    assert failed.error.startswith("skill failed: nothing to run")
    assert failed.attempts[0]["outcome"] == "failed"
    assert failed.decision["variant"] == "desk"
    assert other.author == Author.ASSISTANT and other.decision["rule_id"] is None
    [row, _model] = variant_comparison(owner=owner_key(rule_id=orders.pk))
    assert (row["answers"], row["failed"]) == (3, 1)


# Validation in the admin and the API ----------------------------------------------------


def test_a_variant_is_a_profile_or_a_configured_skill_of_its_bot(
    telegram_bot, web_bot, operator, client
):
    operator_api = APIClient()
    operator_api.force_authenticate(operator)
    menu = skill_instance_create(bot=telegram_bot, name="Menu", skill="help_menu")
    others = skill_instance_create(bot=web_bot, name="Other menu", skill="help_menu")
    profile = telegram_bot.profile

    def create(**fields):
        return operator_api.post(
            "/api/v1/variants/", {"name": "v", "weight": 1, **fields}, format="json"
        )

    both = create(bot=str(telegram_bot.pk), profile=profile.pk, skill_instance=menu.pk)
    neither = create(bot=str(telegram_bot.pk))
    another_bots = create(bot=str(telegram_bot.pk), skill_instance=others.pk)
    every_bot_rule = routing_rule_create(name="all bots", action="profile")
    rule_for_all = create(rule=every_bot_rule.pk, skill_instance=menu.pk)
    reply_rule = routing_rule_create(
        name="fixed", action="reply", reply_template="x", bots=[telegram_bot]
    )
    for_a_reply = create(rule=reply_rule.pk, skill_instance=menu.pk)
    skill_rule = routing_rule_create(
        name="skill", action="skill", skill="help_menu", bots=[telegram_bot]
    )
    good = create(rule=skill_rule.pk, skill_instance=menu.pk)

    assert both.status_code == 400 and "profile or a configured skill" in str(both.json())
    assert neither.status_code == 400 and "profile or a configured skill" in str(neither.json())
    assert another_bots.status_code == 400 and "skill_instance" in another_bots.json()
    assert rule_for_all.status_code == 400
    assert "limit the rule" in str(rule_for_all.json()["skill_instance"])
    assert for_a_reply.status_code == 400 and "rule" in for_a_reply.json()
    assert good.status_code == 201, good.content
    assert good.json()["skill_instance"] == menu.pk and good.json()["profile"] is None
    assert Variant.objects.count() == 1
    # The admin's form says the same.
    client.force_login(operator)
    page = client.post(
        "/admin/routing/variant/add/",
        {"bot": str(telegram_bot.pk), "name": "w", "weight": 1, "profile": profile.pk,
         "skill_instance": menu.pk},
    )  # fmt: skip
    assert page.status_code == 200
    assert "profile or a configured skill" in page.content.decode()
    assert Variant.objects.count() == 1


# "Which rule answers this?" ---------------------------------------------------------------


def test_which_rule_answers_this_shows_staff_holding_the_chat_and_budgets(
    telegram_bot, operator, client
):
    routing_rule_create(name="hours", keywords=["hours"], action="reply", reply_template="9–18")
    bot_update(bot=telegram_bot, daily_token_budget=0)
    client.force_login(operator)

    def explain(chat_id: str, text: str):
        page = client.get(
            "/admin/routing/routingrule/explain/",
            {"bot": str(telegram_bot.pk), "chat_type": "private", "chat_id": chat_id,
             "user_id": chat_id, "text": text},
            HTTP_ACCEPT_LANGUAGE="en",
        )  # fmt: skip
        assert page.status_code == 200
        return page

    refused = explain("501", "tell me a story")
    fixed = explain("501", "your hours?")
    conversation = Conversation.objects.create(bot=telegram_bot, chat_id="502", chat_type="private")
    conversation_take_over(conversation_id=conversation.pk, actor=operator)
    held = explain("502", "your hours?")

    assert refused.context["result"]["decision"].failure == "bot_budget"
    assert "The bot&#x27;s daily token budget is used up" in refused.content.decode()
    assert fixed.context["result"]["decision"].failure == ""
    assert fixed.context["result"]["decision"].rule_name == "hours"
    decision = held.context["result"]["decision"]
    assert decision.failure == "taken_over" and decision.rule_name == ""
    html = held.content.decode()
    assert 'id="staff-hold"' in html
    assert f"/console/conversations/{conversation.pk}/" in html


def test_the_decision_for_a_skill_variant_is_shown_on_the_explain_page(
    telegram_bot, operator, client
):
    menu = skill_instance_create(bot=telegram_bot, name="Menu", skill="help_menu")
    variant_create(bot=telegram_bot, name="menu", weight=1, skill_instance=menu)
    client.force_login(operator)

    page = client.get(
        "/admin/routing/routingrule/explain/",
        {"bot": str(telegram_bot.pk), "chat_type": "private", "chat_id": "9", "text": "hi"},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert page.context["result"]["decision"].action == "skill"
    html = page.content.decode()
    assert '<td id="decision-variant">menu</td>' in html
    assert '<td id="decision-skill">Menu (help_menu)</td>' in html
    assert '<td id="decision-action">Run a skill</td>' in html
