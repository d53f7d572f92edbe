"""Models calling skills as tools, end to end with the real worker: Telegram and Feishu
webhooks and the web chat; the loopback model fake calls the http_action skill, the
loopback ticket system opens the ticket, and the answer built from the result reaches
the user. The calls are recorded on the answer and shown in the console, the history,
the exports and the API; a failing tool, the step bound, a profile without tool support,
fallback and a model outage after an action are covered too."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import json

import pytest
from django.utils import translation
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.bots.choices import WhileAnswering
from apps.bots.services import bot_update
from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Message
from apps.conversations.services.turns import APOLOGY
from apps.core.redis import get_redis
from apps.providers.tool_loop import STOP_NOTE
from apps.skills.services import skill_instance_create
from tests import feishu_events
from tests.console.conftest import staff_socket
from tests.conversations.test_web_chat import communicator_for, receive_until
from tests.factories import make_profile, make_provider
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.server import wait_for
from tests.fakes.ticket_system import FakeTicketSystem
from tests.feishu_events import VERIFICATION_TOKEN, message_event, post_event
from tests.telegram_updates import post_update, private_text_update
from tests.threads import in_thread

fake_feishu = feishu_events.fake_feishu
feishu_bot = feishu_events.feishu_bot

SECRET = "sign-SECRET-tools"
QUESTION = "三楼打印机卡纸了，帮我报修"
TICKET_CALL = {"name": "open_a_ticket", "arguments": {"title": "三楼打印机卡纸"}}


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.MODEL_RETRY_BASE_SECONDS = 0.05
    settings.MODEL_RETRY_MAX_SECONDS = 0.2
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


@pytest.fixture
def tools_on(profile):
    """The bots' profile supports tools; its provider does not retry (plans stay short)."""
    profile.supports_tools = True
    profile.save()
    profile.provider.max_retries = 0
    profile.provider.save()
    return profile


def ticket_tool(bot, tickets, **config):
    return skill_instance_create(
        bot=bot,
        name="Open a ticket",
        skill="http_action",
        config={
            "url": f"{tickets.url}/api/tickets",
            "body": {"title": "{args.title}", "reporter": "{user_name}", "user": "{user_id}"},
            "secret": SECRET,
            "retries": 0,
            "timeout": 5,
            "reply_template": "工单已创建：#{ticket_id}",
            "failure_reply": "工单系统暂时不可用，请稍后再试。",
            "tool_description": "Open a ticket in the help desk's ticket system.",
            "tool_parameters": {
                "type": "object",
                "properties": {"title": {"type": "string"}},
                "required": ["title"],
            },
            **config,
        },
    )


def answer_to(text: str, status=MessageStatus.DELIVERED) -> Message:
    def find():
        inbound = Message.objects.filter(direction=Direction.IN, text=text).last()
        if inbound is None:
            return None
        return Message.objects.filter(
            reply_to=inbound, direction=Direction.OUT, status=status
        ).first()

    return wait_for(find, timeout=60)


def ask_telegram(client, bot, text: str = QUESTION, **kwargs) -> Message:
    post_update(client, bot, private_text_update(text, **kwargs))
    return answer_to(text)


def api_for(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


def test_telegram_the_model_opens_a_ticket_and_answers_with_its_number(
    client, worker, telegram_bot, fake_telegram, fake_openai, tools_on, tickets, staff_user
):
    instance = ticket_tool(telegram_bot, tickets)
    fake_openai.tool_plan = [[TICKET_CALL]]
    fake_openai.tool_reply = "好的，{results}。我们会尽快处理。"

    answer = ask_telegram(client, telegram_bot, first_name="Ada")

    assert answer.text == "好的，工单已创建：#T-1001。我们会尽快处理。"
    assert fake_telegram.chat(4242)[-1].text == answer.text
    (request,) = tickets.requests
    assert json.loads(request.body) == {
        "title": "三楼打印机卡纸",  # from the model's arguments
        "reporter": "Ada Lovelace",  # from the user
        "user": "4242",
    }
    signature = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-signature"] == f"sha256={signature}"
    offered, answered = fake_openai.requests
    assert [tool["function"]["name"] for tool in offered["tools"]] == ["open_a_ticket"]
    assert answered["messages"][-1]["content"] == "工单已创建：#T-1001"
    [call] = answer.tool_calls
    assert call["name"] == "open_a_ticket" and call["result"] == "工单已创建：#T-1001"
    assert json.loads(call["arguments"]) == {"title": "三楼打印机卡纸"}
    assert call["error"] == "" and call["skill_instance_id"] == instance.pk
    assert call["profile"] == tools_on.name and isinstance(call["ms"], int)
    assert answer.author == Author.ASSISTANT and answer.profile_id == tools_on.pk

    # Visible to staff: the console, the history, the exports and the API.
    conversation = answer.conversation
    client.force_login(staff_user)
    for page in (
        f"/console/conversations/{conversation.pk}/",
        f"/console/history/{conversation.pk}/",
    ):
        html = client.get(page).content.decode()
        assert 'data-tool="open_a_ticket"' in html, page
        assert "工单已创建：#T-1001" in html and "1 tool call" in html
    rows = list(
        csv.DictReader(
            io.StringIO(
                b"".join(client.get("/console/history/export.csv").streaming_content).decode()
            )
        )
    )
    [exported] = json.loads(
        next(r for r in rows if r["message_id"] == str(answer.pk))["tool_calls"]
    )
    assert exported["name"] == "open_a_ticket" and exported["result"] == "工单已创建：#T-1001"
    [line] = b"".join(client.get("/console/history/export.jsonl").streaming_content).splitlines()
    roles = [(m["role"], "tool_calls" in m) for m in json.loads(line)["messages"]]
    assert roles == [("user", False), ("assistant", True), ("tool", False), ("assistant", False)]
    messages = api_for(staff_user).get(f"/api/v1/conversations/{conversation.pk}/messages/")
    by_id = {m["id"]: m for m in messages.json()["results"]}
    assert by_id[answer.pk]["tool_calls"][0]["result"] == "工单已创建：#T-1001"


def test_feishu_the_model_opens_a_ticket_and_the_card_shows_the_answer(
    client, worker, feishu_bot, fake_feishu, fake_openai, tools_on, tickets
):
    ticket_tool(feishu_bot, tickets)
    fake_openai.tool_plan = [[TICKET_CALL]]

    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text=QUESTION))

    answer = answer_to(QUESTION)
    assert answer.text == "Done: 工单已创建：#T-1001"
    assert wait_for(lambda: fake_feishu.cards())[-1].text == answer.text
    assert json.loads(tickets.requests[0].body)["user"] == "ou_user_ada"
    assert [call["result"] for call in answer.tool_calls] == ["工单已创建：#T-1001"]


def test_web_chat_the_visitor_gets_the_answer_and_staff_see_the_calls(
    client, worker, web_bot, fake_openai, tools_on, tickets, staff_user
):
    ticket_tool(web_bot, tickets)
    fake_openai.tool_plan = [{"text": "我来为您报修。", "calls": [TICKET_CALL]}]
    visitor = communicator_for(client, web_bot)

    async def chat():
        await visitor.connect()
        await visitor.receive_json_from()
        await visitor.send_json_to({"type": "message", "id": "c1", "text": QUESTION})
        events = await receive_until(
            visitor,
            lambda e: (
                e["type"] == "message"
                and e["message"]["author"] == "assistant"
                and e["message"]["status"] == "delivered"
            ),
        )
        await visitor.disconnect()
        return events

    events = asyncio.run(chat())

    final = events[-1]["message"]
    assert final["text"] == "我来为您报修。\n\nDone: 工单已创建：#T-1001"
    tokens = "".join(e["delta"] for e in events if e["type"] == "token")
    assert tokens == final["text"]  # every step's text streamed, as recorded
    # The visitor never sees what the tools were called with or answered.
    assert all(
        e["type"] != "tool_calls" and "tool_calls" not in e.get("message", {}) for e in events
    )
    answer = Message.objects.get(pk=final["id"])
    assert [call["name"] for call in answer.tool_calls] == ["open_a_ticket"]

    staff = staff_socket(client, staff_user, f"/ws/console/conversations/{answer.conversation_id}/")

    async def watch():
        await staff.connect()
        snapshot = await staff.receive_json_from(timeout=10)
        await staff.disconnect()
        return snapshot

    snapshot = asyncio.run(watch())
    shown = {m["id"]: m for m in snapshot["messages"]}
    assert shown[answer.pk]["tool_calls"][0]["result"] == "工单已创建：#T-1001"


def test_a_failing_tool_is_told_to_the_model_and_recorded(
    client, worker, telegram_bot, fake_telegram, fake_openai, tools_on, tickets
):
    ticket_tool(telegram_bot, tickets)
    tickets.fail_next(503)
    fake_openai.tool_plan = [[TICKET_CALL]]

    answer = ask_telegram(client, telegram_bot)

    [call] = answer.tool_calls
    assert (
        call["error"].startswith("skill failed: POST http://127.0.0.1:") and "503" in call["error"]
    )
    assert call["result"] == "" and call["attempts"][0]["outcome"] == "503"
    told = fake_openai.requests[1]["messages"][-1]["content"]
    assert told.startswith("error: the tool failed") and "工单系统暂时不可用" in told
    assert answer.status == MessageStatus.DELIVERED and answer.text.startswith("Done: error")


def test_the_step_bound_ends_the_calls_and_the_model_answers(
    client, worker, telegram_bot, fake_telegram, fake_openai, tools_on, tickets, settings
):
    settings.TOOL_MAX_STEPS = 2
    ticket_tool(telegram_bot, tickets)
    fake_openai.tool_plan = [[TICKET_CALL]] * 4

    answer = ask_telegram(client, telegram_bot)

    assert len(tickets.requests) == 2
    assert [call["step"] for call in answer.tool_calls] == [1, 2]
    last = fake_openai.requests[-1]
    assert len(fake_openai.requests) == 3
    assert last["tool_choice"] == "none" and last["messages"][-1]["content"] == STOP_NOTE
    assert answer.text == "Done: 工单已创建：#T-1001 | 工单已创建：#T-1002"


def test_a_profile_without_tool_support_is_not_offered_tools(
    client, worker, telegram_bot, fake_telegram, fake_openai, tickets
):
    ticket_tool(telegram_bot, tickets)
    fake_openai.tool_plan = [[TICKET_CALL]]

    answer = ask_telegram(client, telegram_bot)

    assert "tools" not in fake_openai.requests[0]
    assert answer.text == fake_openai.reply and answer.tool_calls == []
    assert tickets.requests == []


def test_fallback_continues_with_the_results_and_acts_once(
    client, worker, telegram_bot, fake_telegram, fake_openai, tools_on, tickets
):
    ticket_tool(telegram_bot, tickets)
    backup_server = FakeOpenAI().start()
    try:
        backup = make_profile(
            provider=make_provider(base_url=backup_server.base_url), supports_tools=True
        )
        tools_on.fallback = backup
        tools_on.save()
        fake_openai.tool_plan = [[TICKET_CALL], {"fail": 502}]
        backup_server.tool_reply = "备用模型：{results}"

        answer = ask_telegram(client, telegram_bot)
    finally:
        backup_server.stop()

    assert answer.text == "备用模型：工单已创建：#T-1001"
    assert answer.profile_id == backup.pk and len(tickets.requests) == 1
    assert [(a["profile_id"], a["outcome"]) for a in answer.attempts] == [
        (tools_on.pk, "failed"),
        (backup.pk, "answered"),
    ]
    assert [call["profile"] for call in answer.tool_calls] == [tools_on.name]


def test_a_model_outage_after_an_action_fails_the_turn_instead_of_acting_again(
    client, worker, telegram_bot, fake_telegram, fake_openai, tools_on, tickets
):
    ticket_tool(telegram_bot, tickets)
    fake_openai.tool_plan = [[TICKET_CALL], {"fail": 503}]

    post_update(client, telegram_bot, private_text_update(QUESTION))
    failed = answer_to(QUESTION, status=MessageStatus.FAILED)

    assert failed.error.startswith(tools_on.name) and "503" in failed.error
    assert [call["result"] for call in failed.tool_calls] == ["工单已创建：#T-1001"]
    apology = wait_for(
        lambda: Message.objects.filter(
            author=Author.SYSTEM, status=MessageStatus.DELIVERED, reply_to__text=QUESTION
        ).first()
    )
    with translation.override("zh-hans"):  # the user wrote in Chinese
        assert apology.text == str(APOLOGY)
    assert fake_telegram.chat(4242)[-1].text == apology.text
    inbound = Message.objects.get(direction=Direction.IN)
    assert inbound.status == MessageStatus.FAILED  # not put back to wait for the model
    assert len(tickets.requests) == 1


def test_answers_that_may_call_tools_are_never_cached(
    client, worker, telegram_bot, fake_telegram, fake_openai, tools_on, tickets
):
    tools_on.cache_ttl = 600
    tools_on.save()
    ticket_tool(telegram_bot, tickets)
    # Each turn: a request that calls the tool, then one answering with its result.
    fake_openai.tool_plan = [[TICKET_CALL], None, [TICKET_CALL], None]

    first = ask_telegram(client, telegram_bot, user_id=1001, first_name="Ada")
    second = ask_telegram(client, telegram_bot, user_id=1002, first_name="Bob")

    assert len(tickets.requests) == 2  # the same first question acted twice
    assert not first.cached and not second.cached
    assert first.text == "Done: 工单已创建：#T-1001"
    assert second.text == "Done: 工单已创建：#T-1002"


def test_staff_watching_live_are_sent_the_calls_when_the_answer_is_recorded(
    client, worker, telegram_bot, fake_telegram, fake_openai, tools_on, tickets, staff_user
):
    ticket_tool(telegram_bot, tickets)
    fake_openai.tool_plan = [None]  # the first question is answered without tools
    first = ask_telegram(client, telegram_bot, "你好")
    fake_openai.tool_plan = [[TICKET_CALL]]
    staff = staff_socket(client, staff_user, f"/ws/console/conversations/{first.conversation_id}/")

    async def watch():
        await staff.connect()
        await staff.receive_json_from(timeout=10)  # the snapshot
        await in_thread(post_update, client, telegram_bot, private_text_update(QUESTION))
        events = await receive_until(staff, lambda e: e["type"] == "tool_calls", timeout=60)
        await staff.disconnect()
        return events

    events = asyncio.run(watch())

    answer = answer_to(QUESTION)
    assert events[-1]["message_id"] == answer.pk
    assert events[-1]["tool_calls"] == answer.tool_calls
    assert answer.tool_calls[0]["result"] == "工单已创建：#T-1001"


def test_an_answer_stopped_by_a_new_message_keeps_the_calls_it_made(
    client, worker, telegram_bot, fake_telegram, fake_openai, tools_on, tickets
):
    bot_update(bot=telegram_bot, while_answering=WhileAnswering.INTERRUPT)
    ticket_tool(telegram_bot, tickets)
    fake_openai.chunk_size = 4
    fake_openai.tool_plan = [[TICKET_CALL]]  # 6 deltas: the call's opening, 5 of arguments
    fake_openai.tool_reply = "好的，{results}。我们会尽快处理，请耐心等待，谢谢。"
    fake_openai.stall_after_chunks = 7  # so only the answer after the call hangs
    written = "好的，工单已创建：#T-1001。我们会尽快处理，请耐心"  # its first 7 pieces
    post_update(client, telegram_bot, private_text_update(QUESTION))
    wait_for(lambda: [m.text for m in fake_telegram.chat(4242)] == [written] or None, timeout=30)

    fake_openai.stall_after_chunks = None
    fake_openai.reply = "One answer to both."
    post_update(client, telegram_bot, private_text_update("还有二楼的也坏了"))

    answer = answer_to("还有二楼的也坏了")
    stopped = Message.objects.get(direction=Direction.OUT, status=MessageStatus.INTERRUPTED)
    assert stopped.text == written
    assert [call["result"] for call in stopped.tool_calls] == ["工单已创建：#T-1001"]
    assert answer.text == "One answer to both." and answer.tool_calls == []
    assert len(tickets.requests) == 1
