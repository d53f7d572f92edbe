"""Routing rules that run a skill, through the real pipeline (Telegram webhook, real worker):
http_action against a loopback ticket system (signed request, retries, failures told to
the user and recorded on the answer) and help_menu listing what the bot can do."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Message
from apps.core.redis import get_redis
from apps.routing.services import routing_rule_create
from apps.skills.services import skill_instance_create, skill_instance_update
from tests.factories import make_web_bot
from tests.fakes.server import wait_for
from tests.fakes.ticket_system import FakeTicketSystem
from tests.telegram_updates import post_update, private_text_update

SECRET = "sign-SECRET-77aa"


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    redis = get_redis()
    for pattern in ("assistant:provider:*", "assistant:answer-cache:*", "assistant:deliver:*"):
        keys = list(redis.scan_iter(pattern))
        if keys:
            redis.delete(*keys)


@pytest.fixture
def tickets():
    server = FakeTicketSystem().start()
    yield server
    server.stop()


def answer_to(inbound_text: str) -> Message:
    def find():
        inbound = Message.objects.filter(direction=Direction.IN, text=inbound_text).last()
        if inbound is None:
            return None
        return Message.objects.filter(
            reply_to=inbound, direction=Direction.OUT, status=MessageStatus.DELIVERED
        ).first()

    return wait_for(find, timeout=60)


def ask(client, bot, text: str, **sender) -> Message:
    post_update(client, bot, private_text_update(text, **sender))
    return answer_to(text)


def ticket_skill(bot, tickets, **config):
    return skill_instance_create(
        bot=bot,
        name="Open a ticket",
        skill="http_action",
        config={
            "url": f"{tickets.url}/api/tickets?chat={{chat_id}}",
            "headers": {"Authorization": "Bearer tok-SECRET-1"},
            "body": {"title": "{text}", "reporter": "{user_name}", "user": "{user_id}"},
            "secret": SECRET,
            "retries": 2,
            "timeout": 5,
            "reply_template": "工单已创建：#{ticket_id}",
            "failure_reply": "工单系统暂时不可用，请稍后再试。",
            **config,
        },
    )


def ticket_rule(instance):
    return routing_rule_create(
        name="tickets", keywords=["工单", "ticket"], action="skill", skill_instance=instance
    )


def test_a_rule_runs_http_action_and_answers_with_the_ticket_number(
    client, worker, telegram_bot, fake_telegram, fake_openai, tickets
):
    instance = ticket_skill(telegram_bot, tickets)
    rule = ticket_rule(instance)

    answer = ask(client, telegram_bot, "帮我开个工单：打印机坏了", first_name="Ada")

    assert answer.text == "工单已创建：#T-1001"
    assert answer.author == Author.SYSTEM and answer.error == ""
    assert answer.routing_rule_id == rule.pk
    assert answer.decision["action"] == "skill"
    assert answer.decision["skill_instance_id"] == instance.pk
    assert answer.attempts[0]["skill"] == "http_action"
    assert answer.attempts[0]["outcome"] == "answered"
    assert answer.attempts[0]["status"] == 201
    (request,) = tickets.requests
    assert request.method == "POST" and request.query["chat"] == ["4242"]
    assert json.loads(request.body) == {
        "title": "帮我开个工单：打印机坏了",
        "reporter": "Ada Lovelace",  # the name Telegram gives
        "user": "4242",
    }
    assert request.headers["authorization"] == "Bearer tok-SECRET-1"
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-signature"] == f"sha256={expected}"
    inbound = Message.objects.get(direction=Direction.IN)
    assert inbound.status == MessageStatus.ANSWERED and inbound.routing_rule_id == rule.pk
    assert fake_openai.requests == []  # the model was not asked
    sent = [call for call in fake_telegram.calls if call.method == "sendMessage"]
    assert sent[-1].params["text"] == "工单已创建：#T-1001"


def test_transient_failures_are_retried_with_backoff(
    client, worker, telegram_bot, fake_telegram, fake_openai, tickets
):
    ticket_rule(ticket_skill(telegram_bot, tickets))
    tickets.fail_next(503)
    tickets.fail_next(502)

    answer = ask(client, telegram_bot, "please open a ticket for me")

    assert answer.text == "工单已创建：#T-1001"
    assert len(tickets.requests) == 3
    assert [a["outcome"] for a in answer.attempts[0]["attempts"]] == ["503", "502", "201"]


def test_a_refused_request_answers_clearly_and_is_recorded(
    client, worker, telegram_bot, fake_telegram, fake_openai, tickets
):
    ticket_rule(ticket_skill(telegram_bot, tickets))
    tickets.fail_next(400, {"error": "bad request"})

    answer = ask(client, telegram_bot, "ticket: the door is stuck")

    assert answer.text == "工单系统暂时不可用，请稍后再试。"
    assert answer.error.startswith("skill failed: POST http://127.0.0.1:")
    assert "400" in answer.error and "SECRET" not in answer.error
    assert answer.attempts[0]["outcome"] == "failed"
    assert [a["outcome"] for a in answer.attempts[0]["attempts"]] == ["400"]  # not retried
    assert len(tickets.requests) == 1


def test_a_reply_template_naming_what_the_response_lacks_is_a_failure(
    client, worker, telegram_bot, fake_telegram, fake_openai, tickets
):
    ticket_rule(ticket_skill(telegram_bot, tickets, reply_template="#{ticket.number}"))

    answer = ask(client, telegram_bot, "ticket: no number")

    assert answer.text == "工单系统暂时不可用，请稍后再试。"
    assert "the response has no 'ticket.number'" in answer.error


def test_a_disabled_skill_answers_clearly(
    client, worker, telegram_bot, fake_telegram, fake_openai, tickets
):
    instance = ticket_skill(telegram_bot, tickets)
    ticket_rule(instance)
    skill_instance_update(instance=instance, enabled=False)

    answer = ask(client, telegram_bot, "ticket please")

    assert "could not do that" in answer.text
    assert answer.error.startswith("skill failed: nothing to run")
    assert tickets.requests == []


def test_a_slow_system_times_out_and_is_told(
    client, worker, telegram_bot, fake_telegram, fake_openai, tickets
):
    ticket_rule(ticket_skill(telegram_bot, tickets, timeout=0.2, retries=0))
    tickets.delay = 2.0

    answer = ask(client, telegram_bot, "ticket: slow system")

    assert answer.text == "工单系统暂时不可用，请稍后再试。"
    assert "ReadTimeout" in answer.error
    assert answer.attempts[0]["attempts"][0]["outcome"].startswith("ReadTimeout")


def test_another_bots_skill_is_never_run(
    client, worker, telegram_bot, fake_telegram, fake_openai, tickets
):
    other_bot = make_web_bot(profile=None, name="other")
    ticket_rule(ticket_skill(other_bot, tickets))  # a rule for every bot, another bot's skill

    answer = ask(client, telegram_bot, "ticket from the wrong bot")

    assert answer.error.startswith("skill failed: nothing to run")
    assert tickets.requests == []  # the other bot's URL and keys were not used


def test_help_menu_lists_the_bots_rules_and_skills(
    client, worker, telegram_bot, fake_telegram, fake_openai, tickets
):
    ticket_rule(ticket_skill(telegram_bot, tickets))
    routing_rule_create(name="Orders", command="/order", action="reply", reply_template="ok")
    routing_rule_create(name="spam", keywords=["buy now"], action="ignore")
    # /help and /start are the platform's own commands, answered before routing.
    routing_rule_create(name="Menu", command="/menu", action="skill", skill="help_menu")

    answer = ask(client, telegram_bot, "/menu")

    lines = answer.text.splitlines()
    assert lines[0] == "Here is what I can do:"
    assert "• 工单, ticket — tickets" in lines
    assert "• /order — Orders" in lines
    assert "• /menu — Menu" in lines
    assert "• Open a ticket" in lines
    assert not any("buy now" in line for line in lines)  # an ignore rule offers nothing
    assert answer.decision["skill"] == "help_menu"
