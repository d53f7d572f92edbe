"""An MCP server's tools called by the model, end to end with the real worker: the
Feishu webhook and the web chat (the Telegram webhook runs the mcp skill by a rule in
test_mcp_turns.py). The loopback model fake calls the tool the platform offered; the
fake MCP server (the official SDK, over streamable HTTP) answers; the result reaches the
model and the user, and the call is recorded on the answer."""

from __future__ import annotations

import asyncio

import pytest

from apps.skills.services import skill_instance_create
from apps.skills.tools import tools_for_bot
from tests import feishu_events
from tests.conversations.test_web_chat import communicator_for, receive_until
from tests.fakes.mcp_server import MCP_TOKEN
from tests.fakes.server import wait_for
from tests.feishu_events import VERIFICATION_TOKEN, message_event, post_event
from tests.skills import test_tool_calls
from tests.skills.test_tool_calls import _isolated, answer_to  # noqa: F401 - a fixture

tools_on = test_tool_calls.tools_on
fake_feishu = feishu_events.fake_feishu
feishu_bot = feishu_events.feishu_bot

TOKEN = MCP_TOKEN
QUESTION = "我的订单 A-1001 到哪了？"
SHIPPED = "Order A-1001: shipped on 3 May, arriving 6 May"


pytestmark = pytest.mark.usefixtures("mcp_clean")


def order_desk(bot, server):
    """An MCP skill offering only the server's `lookup_order` tool; its model-facing name."""
    skill_instance_create(
        bot=bot,
        name="Order desk",
        skill="mcp",
        config={
            "transport": "streamable_http",
            "url": server.url,
            "headers": {"Authorization": f"Bearer {TOKEN}"},
            "allowed_tools": ["lookup_order"],
        },
    )
    [spec] = tools_for_bot(bot).specs
    return spec["function"]["name"]


def test_feishu_the_model_looks_an_order_up_on_an_mcp_server(
    client, worker, feishu_bot, fake_feishu, fake_openai, tools_on, mcp_http
):
    name = order_desk(feishu_bot, mcp_http)
    assert name.endswith("lookup_order")
    fake_openai.tool_plan = [[{"name": name, "arguments": {"order_id": "A-1001"}}]]

    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text=QUESTION))

    answer = answer_to(QUESTION)
    assert answer.text == f"Done: {SHIPPED}"
    assert wait_for(lambda: fake_feishu.cards())[-1].text == answer.text
    offered, answered = fake_openai.requests
    assert [tool["function"]["name"] for tool in offered["tools"]] == [name]
    assert answered["messages"][-1] == {
        "role": "tool",
        "tool_call_id": answered["messages"][-2]["tool_calls"][0]["id"],
        "content": SHIPPED,
    }
    [call] = answer.tool_calls
    assert call["name"] == name and call["result"] == SHIPPED and call["error"] == ""


def test_web_chat_an_mcp_tool_error_is_told_to_the_model_and_recorded(
    client, worker, web_bot, fake_openai, tools_on, mcp_http
):
    name = order_desk(web_bot, mcp_http)
    fake_openai.tool_plan = [[{"name": name, "arguments": {"order_id": "A-9999"}}]]
    fake_openai.tool_reply = "抱歉：{results}"
    visitor = communicator_for(client, web_bot)

    async def chat():
        await visitor.connect()
        await visitor.receive_json_from()
        await visitor.send_json_to({"type": "message", "id": "m1", "text": "A-9999 呢？"})
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

    final = asyncio.run(chat())[-1]["message"]

    [call] = answer_to("A-9999 呢？").tool_calls
    assert call["name"] == name and call["result"] == ""
    assert "no order A-9999" in call["error"]
    # The model was told the tool failed (and why), and answered the visitor.
    assert final["text"].startswith("抱歉：") and "no order A-9999" in final["text"]
