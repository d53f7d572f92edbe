"""Routing rules through the real pipeline: each condition and action over the Telegram
webhook with the real worker, one rule over Feishu and one over the web chat; the decision
stored on the answer and shown in the console, history, export and API."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Conversation, Message
from apps.conversations.selectors import conversation_summary
from apps.core.redis import get_redis
from apps.core.roles import roles_sync
from apps.routing.services import routing_rule_create, routing_rule_update
from tests.factories import make_profile, make_provider
from tests.fakes.server import wait_for
from tests.feishu_events import (  # noqa: F401 - fixtures
    VERIFICATION_TOKEN,
    fake_feishu,
    feishu_bot,
    message_event,
    post_event,
)
from tests.telegram_updates import (
    document_update,
    group_text_update,
    photo_update,
    post_update,
    private_text_update,
)

ROUTED = "Routed to you, {user_name}."
MODEL = "Hello from the fake model."


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    redis = get_redis()
    for pattern in ("assistant:provider:*", "assistant:answer-cache:*", "assistant:deliver:*"):
        keys = list(redis.scan_iter(pattern))
        if keys:
            redis.delete(*keys)


def answer_to(inbound_text: str) -> Message:
    """The delivered answer (model or fixed) to the user message with this text."""

    def find():
        inbound = Message.objects.filter(direction=Direction.IN, text=inbound_text).last()
        if inbound is None:
            return None
        return Message.objects.filter(
            reply_to=inbound, direction=Direction.OUT, status=MessageStatus.DELIVERED
        ).first()

    return wait_for(find, timeout=60)


def ask(client, bot, update: dict, text: str) -> Message:
    post_update(client, bot, update)
    return answer_to(text)


def routed_rule(**conditions):
    return routing_rule_create(name="routed", action="reply", reply_template=ROUTED, **conditions)


def window_around_now(zone: str, *, inside: bool) -> dict:
    now = datetime.now(ZoneInfo(zone))
    start = now - timedelta(hours=1) if inside else now + timedelta(hours=1)
    return {
        "active_from": start.time().replace(microsecond=0, second=0),
        "active_until": (start + timedelta(hours=2)).time().replace(microsecond=0, second=0),
        "time_zone": zone,
    }


# Each condition: the rule's fields, a message that meets it, one that does not.
CONDITIONS = {
    "platform": (
        {"platform": "telegram"},
        None,  # every Telegram message meets it; the Feishu test shows the other side
    ),
    "chat type": ({"chat_type": "group"}, "private"),
    "chat ids": ({"chat_ids": ["-100777"]}, "private"),
    "user ids": ({"user_ids": ["5005"]}, "private"),
    "keywords any, case-insensitive": (
        {"keywords": ["ORDER", "退款"], "keyword_match": "any"},
        "I bordered the train",
    ),
    "keywords all": ({"keywords": ["vip", "订单"], "keyword_match": "all"}, "just vip here"),
    "regular expression": ({"pattern": r"(?i)invoice\s*#?\d{4,}"}, "invoice please"),
    "command": ({"command": "/order"}, "order 42 please"),
    "attachment": ({"attachment_kind": "image"}, "no picture"),
    "language": ({"language": "zh-hans"}, "hello there"),
}
MATCHING = {
    "platform": lambda: private_text_update("hello", user_id=5001),
    "chat type": lambda: group_text_update("@assistant_test_bot hello", mention=True),
    "chat ids": lambda: group_text_update("@assistant_test_bot hello", mention=True),
    "user ids": lambda: private_text_update("hello", user_id=5005, first_name="Ada"),
    "keywords any, case-insensitive": lambda: private_text_update("where is my Order?"),
    "keywords all": lambda: private_text_update("我是VIP客户，查订单"),
    "regular expression": lambda: private_text_update("Invoice #20240 is wrong"),
    "command": lambda: private_text_update("/order 42"),
    "attachment": lambda: photo_update("look"),
    "language": lambda: private_text_update("你好，我想问一下"),
}


def _text_of(update: dict) -> str:
    message = update["message"]
    text = message.get("text") or message.get("caption") or ""
    return text.removeprefix("@assistant_test_bot ")  # a mention of the bot is not stored


@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_each_condition_routes_what_meets_it_and_only_that(
    client, worker, telegram_bot, fake_telegram, fake_openai, condition
):
    fields, other_text = CONDITIONS[condition]
    rule = routed_rule(**fields)

    update = MATCHING[condition]()
    routed = ask(client, telegram_bot, update, _text_of(update))

    assert routed.author == Author.SYSTEM
    assert routed.text == "Routed to you, Ada Lovelace."
    assert routed.routing_rule_id == rule.pk
    assert routed.decision["rule"] == "routed" and routed.decision["action"] == "reply"
    assert routed.reply_to.status == MessageStatus.ANSWERED
    if other_text is not None:
        default = ask(client, telegram_bot, private_text_update(other_text), other_text)
        assert default.author == Author.ASSISTANT
        assert default.text == MODEL
        assert default.routing_rule_id is None
        assert default.decision["reason"] == "no rule matched: the bot's profile"


def test_a_document_is_not_an_image(client, worker, telegram_bot, fake_telegram, fake_openai):
    routed_rule(attachment_kind="image")
    # A document the model cannot read gets the fixed "can't read" reply, not the rule's.
    post_update(client, telegram_bot, document_update())
    wait_for(lambda: Message.objects.filter(direction=Direction.OUT).exists(), timeout=60)
    assert not Message.objects.filter(text="Routed to you, Ada Lovelace.").exists()


@pytest.mark.parametrize("inside", [True, False], ids=["inside", "outside"])
def test_time_window_in_a_time_zone(
    client, worker, telegram_bot, fake_telegram, fake_openai, inside
):
    routed_rule(**window_around_now("Asia/Shanghai", inside=inside))

    answer = ask(client, telegram_bot, private_text_update("what time is it"), "what time is it")

    assert answer.text == ("Routed to you, Ada Lovelace." if inside else MODEL)


def test_weekdays_other_than_today_do_not_match(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    today = datetime.now(ZoneInfo("Europe/Berlin")).isoweekday()
    routed_rule(weekdays=[day for day in range(1, 8) if day != today], time_zone="Europe/Berlin")

    assert ask(client, telegram_bot, private_text_update("hi"), "hi").text == MODEL


def test_first_match_by_priority_wins_and_bots_limit_a_rule(
    client, worker, telegram_bot, web_bot, fake_telegram, fake_openai
):
    routing_rule_create(
        name="other bot only", priority=1, action="reply", reply_template="wrong bot",
        bots=[web_bot],
    )  # fmt: skip
    routing_rule_create(name="second", priority=20, action="reply", reply_template="second")
    routing_rule_create(name="first", priority=10, action="reply", reply_template="first")

    answer = ask(client, telegram_bot, private_text_update("hi"), "hi")

    assert answer.text == "first"
    assert answer.decision["rule"] == "first"


def test_profile_action_with_extra_system_prompt(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    orders = make_profile(
        provider=make_provider(base_url=fake_openai.base_url),
        name="orders",
        model="order-model",
        system_prompt="You are the order desk.",
    )
    rule = routing_rule_create(
        name="orders",
        keywords=["订单"],
        action="profile",
        profile=orders,
        extra_system_prompt="Ask for the order number first.",
    )

    answer = ask(client, telegram_bot, private_text_update("我的订单到哪了"), "我的订单到哪了")

    request = fake_openai.requests[-1]
    assert request["model"] == "order-model"
    assert request["messages"][:2] == [
        {"role": "system", "content": "You are the order desk."},
        {"role": "system", "content": "Ask for the order number first."},
    ]
    assert answer.profile_id == orders.pk
    assert answer.routing_rule_id == rule.pk
    assert answer.decision == {
        "action": "profile",
        "rule_id": rule.pk,
        "rule": "orders",
        "variant": "",
        "variant_id": None,
        "reason": "rule 'orders' matched",
        "failure": "",
        "profile_id": orders.pk,
    }


def test_handoff_to_staff(client, worker, telegram_bot, fake_telegram, fake_openai):
    rule = routing_rule_create(name="humans", keywords=["human"], action="handoff")

    notice = ask(client, telegram_bot, private_text_update("I want a human"), "I want a human")

    assert notice.author == Author.SYSTEM
    assert "staff" in notice.text
    conversation = Conversation.objects.get()
    assert conversation.taken_over_at is not None and conversation.handled_by is None
    assert conversation_summary(conversation_id=conversation.pk)["state"] == "waiting"
    inbound = Message.objects.get(direction=Direction.IN)
    assert inbound.status == MessageStatus.SKIPPED
    assert inbound.routing_rule_id == rule.pk and inbound.decision["action"] == "handoff"
    # What the user writes next waits for staff: the model is not asked.
    post_update(client, telegram_bot, private_text_update("hello?"))
    wait_for(
        lambda: Message.objects.filter(text="hello?", status=MessageStatus.SKIPPED).exists(),
        timeout=60,
    )
    assert fake_openai.requests == []


def test_ignore(client, worker, telegram_bot, fake_telegram, fake_openai):
    routing_rule_create(name="spam", pattern=r"(?i)buy now", action="ignore")

    post_update(client, telegram_bot, private_text_update("BUY NOW cheap"))
    inbound = wait_for(
        lambda: Message.objects.filter(status=MessageStatus.SKIPPED).first(), timeout=60
    )
    answer = ask(client, telegram_bot, private_text_update("real question"), "real question")

    assert inbound.decision["action"] == "ignore"
    assert answer.text == MODEL
    assert [m.text for m in fake_telegram.chat(4242)] == [MODEL]  # nothing said to the spam


def test_no_profile_is_a_failure_told_by_its_code(client, worker, fake_telegram, fake_openai):
    from tests.factories import make_telegram_bot

    bot = make_telegram_bot(profile=None, api_base_url=fake_telegram.url)
    post_update(client, bot, private_text_update("hello"))

    failed = wait_for(
        lambda: Message.objects.filter(direction=Direction.IN, status="failed").first(),
        timeout=60,
    )
    assert failed.decision["failure"] == "no_profile"


def test_a_changed_rule_applies_to_the_next_message(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    rule = routed_rule(keywords=["ping"])
    assert ask(client, telegram_bot, private_text_update("ping 1"), "ping 1").text != MODEL

    routing_rule_update(rule=rule, enabled=False)

    assert ask(client, telegram_bot, private_text_update("ping 2"), "ping 2").text == MODEL


def test_feishu_message_is_routed(client, worker, feishu_bot, fake_feishu, fake_openai):  # noqa: F811
    routing_rule_create(
        name="feishu orders", platform="feishu", keywords=["订单"], action="reply",
        reply_template="飞书订单请找客服。",
    )  # fmt: skip
    routing_rule_create(
        name="telegram only", platform="telegram", action="reply", reply_template="wrong"
    )

    response = post_event(
        client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="查订单")
    )

    assert response.status_code == 200
    answer = answer_to("查订单")
    assert answer.text == "飞书订单请找客服。"
    assert answer.decision["rule"] == "feishu orders"


def test_web_chat_message_is_routed(client, worker, web_bot, fake_openai):
    from tests.conversations.test_web_chat import ask as web_ask
    from tests.conversations.test_web_chat import communicator_for

    routing_rule_create(
        name="web greeting", platform="web", command="/start_order", action="reply",
        reply_template="Hello {user_name}, your order desk on {bot_name}.",
    )  # fmt: skip
    communicator = communicator_for(client, web_bot)

    async def scenario():
        answer = await web_ask(communicator, "/start_order now")
        await communicator.disconnect()
        return answer

    answer = asyncio.run(scenario())

    assert answer["text"].startswith("Hello ")
    assert answer["text"].endswith(f"your order desk on {web_bot.name}.")
    assert Message.objects.get(pk=answer["id"]).decision["rule"] == "web greeting"


def test_decision_is_shown_in_history_export_and_api(
    client, worker, telegram_bot, fake_telegram, fake_openai, django_user_model
):
    routing_rule_create(name="orders desk", keywords=["order"], action="reply", reply_template="ok")
    answer = ask(client, telegram_bot, private_text_update("my order"), "my order")
    roles_sync()
    reviewer = django_user_model.objects.create_user("reviewer", is_staff=True)
    reviewer.groups.add(Group.objects.get(name="Reviewer"))
    client.force_login(reviewer)
    conversation = answer.conversation_id

    history = client.get(f"/console/history/{conversation}/")
    live = client.get(f"/console/conversations/{conversation}/")
    export = b"".join(client.get("/console/history/export.csv").streaming_content).decode()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=reviewer).key}")
    messages = api.get(f"/api/v1/conversations/{conversation}/messages/").json()

    assert "orders desk" in history.content.decode()
    assert "orders desk" in live.content.decode()
    header, *rows = export.splitlines()
    assert "routing_rule" in header.split(",")
    assert any("orders desk" in row and "rule 'orders desk' matched" in row for row in rows)
    items = messages["results"] if isinstance(messages, dict) else messages
    routed = next(item for item in items if item["id"] == answer.pk)
    assert routed["decision"]["rule"] == "orders desk"
    assert routed["routing_rule"] == answer.routing_rule_id
