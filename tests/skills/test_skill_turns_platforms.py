"""Routing rules that run a skill, through the Feishu webhook and the web chat with the real
worker (the Telegram webhook is covered in test_skill_turns.py): http_action sends the
signed request to the loopback ticket system with the user that platform knows, and the
user gets the ticket number in their chat; help_menu lists what the bot can do."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Message
from apps.routing.services import routing_rule_create
from tests import feishu_events
from tests.conversations.test_web_chat import communicator_for, receive_until
from tests.fakes.server import wait_for
from tests.feishu_events import USER_OPEN_ID, VERIFICATION_TOKEN, message_event, post_event
from tests.skills import test_skill_turns
from tests.skills.test_skill_turns import SECRET, answer_to, ticket_rule, ticket_skill

fake_feishu = feishu_events.fake_feishu
feishu_bot = feishu_events.feishu_bot
tickets = test_skill_turns.tickets
_isolated = test_skill_turns._isolated


def _shown(sent) -> str:
    """What a message the bot put in a Feishu chat shows: a card's markdown or a text."""
    if sent.msg_type == "text":
        return json.loads(sent.versions[-1])["text"]
    return sent.text


def _signed(request) -> bool:
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    return request.headers["x-signature"] == f"sha256={expected}"


def test_feishu_a_rule_runs_http_action_and_the_chat_gets_the_ticket_number(
    client, worker, feishu_bot, fake_feishu, fake_openai, tickets
):
    instance = ticket_skill(feishu_bot, tickets)
    rule = ticket_rule(instance)
    text = "帮我开个工单：打印机坏了"

    response = post_event(
        client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text=text, chat_id="oc_desk")
    )

    assert response.status_code == 200
    answer = answer_to(text)
    assert answer.text == "工单已创建：#T-1001"
    assert answer.author == Author.SYSTEM and answer.error == ""
    assert answer.routing_rule_id == rule.pk
    assert answer.decision["action"] == "skill"
    assert answer.decision["skill_instance_id"] == instance.pk
    assert answer.attempts[0]["skill"] == "http_action"
    assert (answer.attempts[0]["outcome"], answer.attempts[0]["status"]) == ("answered", 201)
    (request,) = tickets.requests
    assert request.method == "POST" and request.query["chat"] == ["oc_desk"]
    assert json.loads(request.body) == {
        "title": text,
        "reporter": "",  # Feishu's message events carry no sender name
        "user": USER_OPEN_ID,  # the sender's open_id
    }
    assert request.headers["authorization"] == "Bearer tok-SECRET-1"
    assert _signed(request)
    inbound = Message.objects.get(direction=Direction.IN)
    assert inbound.status == MessageStatus.ANSWERED and inbound.routing_rule_id == rule.pk
    assert fake_openai.requests == []  # the model was not asked
    sent = wait_for(lambda: fake_feishu.cards())
    assert [_shown(card) for card in sent] == ["工单已创建：#T-1001"]
    assert sent[0].reply_to == inbound.platform_message_id  # a reply to the user's message


def test_web_chat_a_rule_runs_http_action_and_the_visitor_sees_the_ticket_number(
    client, worker, web_bot, fake_openai, tickets, django_user_model
):
    instance = ticket_skill(web_bot, tickets)
    rule = routing_rule_create(
        name="tickets by pattern",
        pattern=r"(?i)^ticket:",
        action="skill",
        skill_instance=instance,
    )
    client.force_login(django_user_model.objects.create_user("ada.l", password="x-pass-1"))
    visitor = communicator_for(client, web_bot)
    visitor_id = client.session["webchat_visitor"]

    async def chat():
        connected, _ = await visitor.connect()
        assert connected
        await visitor.receive_json_from()
        await visitor.send_json_to({"type": "message", "id": "c1", "text": "ticket: door stuck"})
        events = await receive_until(
            visitor,
            lambda e: (
                e["type"] == "message"
                and e["message"]["author"] != "user"
                and e["message"]["status"] == "delivered"
            ),
            timeout=60,
        )
        await visitor.disconnect()
        return events

    events = asyncio.run(chat())

    final = events[-1]["message"]
    assert (final["author"], final["text"]) == ("system", "工单已创建：#T-1001")
    assert not any(e["type"] == "token" for e in events)  # a skill's reply is not streamed
    answer = Message.objects.get(pk=final["id"])
    assert answer.reply_to.text == "ticket: door stuck"
    assert answer.routing_rule_id == rule.pk
    assert answer.decision["skill_instance_id"] == instance.pk
    assert answer.attempts[0]["skill"] == "http_action"
    (request,) = tickets.requests
    assert request.query["chat"] == [visitor_id]
    assert json.loads(request.body) == {
        "title": "ticket: door stuck",
        "reporter": "ada.l",  # the signed-in user's name
        "user": visitor_id,  # the visitor's id in the session
    }
    assert _signed(request)
    assert fake_openai.requests == []


def test_feishu_help_menu_lists_the_bots_rules_and_skills(
    client, worker, feishu_bot, fake_feishu, fake_openai, tickets
):
    ticket_rule(ticket_skill(feishu_bot, tickets))
    routing_rule_create(name="Orders", command="/order", action="reply", reply_template="ok")
    routing_rule_create(name="spam", keywords=["buy now"], action="ignore")
    routing_rule_create(name="Menu", command="/menu", action="skill", skill="help_menu")

    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="/menu"))

    answer = answer_to("/menu")
    lines = answer.text.splitlines()
    assert lines[0] == "Here is what I can do:"
    assert "• 工单, ticket — tickets" in lines
    assert "• /order — Orders" in lines
    assert "• /menu — Menu" in lines
    assert "• Open a ticket" in lines
    assert not any("buy now" in line for line in lines)
    assert answer.decision["skill"] == "help_menu"
    assert tickets.requests == [] and fake_openai.requests == []
    sent = wait_for(lambda: fake_feishu.cards())
    assert _shown(sent[-1]) == answer.text  # the menu reached the chat
