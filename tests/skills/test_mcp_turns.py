"""A routing rule runs the mcp skill through the real pipeline (Telegram webhook, real
worker), against the fake MCP server over streamable HTTP and over stdio."""

from __future__ import annotations

import pytest

from apps.conversations.choices import Author
from apps.routing.services import routing_rule_create
from apps.skills.services import skill_instance_create
from tests.fakes.mcp_server import MCP_TOKEN, stdio_command
from tests.skills.test_skill_turns import _isolated, ask  # noqa: F401 - a fixture

TOKEN = MCP_TOKEN


pytestmark = pytest.mark.usefixtures("mcp_clean")


def order_rule(instance):
    return routing_rule_create(
        name="orders", pattern=r"^A-\d+$", action="skill", skill_instance=instance
    )


def test_a_rule_runs_an_mcp_tool_over_http_and_answers_with_its_text(
    client, worker, telegram_bot, fake_telegram, fake_openai, mcp_http
):
    instance = skill_instance_create(
        bot=telegram_bot,
        name="Order desk",
        skill="mcp",
        config={
            "transport": "streamable_http",
            "url": mcp_http.url,
            "headers": {"Authorization": f"Bearer {TOKEN}"},
            "tool": "lookup_order",
            "arguments": {"order_id": "{text}"},
        },
    )
    rule = order_rule(instance)

    answer = ask(client, telegram_bot, "A-1001")

    assert answer.text == "Order A-1001: shipped on 3 May, arriving 6 May"
    assert answer.author == Author.SYSTEM and answer.error == ""
    assert answer.routing_rule_id == rule.pk
    assert answer.attempts[0]["skill"] == "mcp"
    assert answer.attempts[0]["outcome"] == "answered"
    assert answer.attempts[0]["tool"] == "lookup_order"
    assert answer.attempts[0]["server"] == f"http://127.0.0.1:{mcp_http.port}"
    assert fake_openai.requests == []
    sent = [call for call in fake_telegram.calls if call.method == "sendMessage"]
    assert sent[-1].params["text"] == answer.text


def test_a_stdio_tool_error_answers_the_failure_reply_and_is_recorded(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    command, args = stdio_command()
    instance = skill_instance_create(
        bot=telegram_bot,
        name="Order desk",
        skill="mcp",
        config={
            "transport": "stdio",
            "command": command,
            "args": args,
            "tool": "lookup_order",
            "arguments": {"order_id": "{text}"},
            "failure_reply": "查不到这个订单，请核对订单号。",
        },
    )
    order_rule(instance)

    answer = ask(client, telegram_bot, "A-9999")

    assert answer.text == "查不到这个订单，请核对订单号。"
    assert answer.error == (
        "skill failed: MCP tool lookup_order answered an error: "
        "Error executing tool lookup_order: no order A-9999"
    )
    assert answer.attempts[0]["outcome"] == "failed"
    assert answer.attempts[0]["is_error"] is True
