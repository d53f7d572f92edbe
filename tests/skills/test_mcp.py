"""The mcp skill against real MCP servers on loopback (tests/fakes/mcp_server.py, the
official SDK's server): over streamable HTTP (uvicorn in a thread) and over stdio (a child
process). Listing, the allow-list, the cache, calling, tool errors, unreachable servers,
time limits (the stdio child is always ended), validation, and secrets kept out of the
admin, the API, the audit log and error messages."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import psutil
import pytest
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.core.roles import roles_sync
from apps.skills.base import SkillContext, SkillError
from apps.skills.models import SkillInstance
from apps.skills.registry import skill_get
from apps.skills.services import skill_execute, skill_instance_create
from tests.factories import make_web_bot
from tests.fakes.mcp_server import MCP_TOKEN, FakeMcpHttpServer, stdio_command

TOKEN = MCP_TOKEN
ENV_SECRET = "env-SECRET-value-9a8b"
ALL_TOOLS = ["add", "echo", "lookup_order", "secret_env", "picture", "fail", "slow", "stuck"]


pytestmark = pytest.mark.usefixtures("mcp_clean")


@pytest.fixture
def skill():
    return skill_get("mcp")


def http_config(server, **extra):
    return {
        "transport": "streamable_http",
        "url": server.url,
        "headers": {"Authorization": f"Bearer {TOKEN}"},
        **extra,
    }


def stdio_config(**extra):
    command, args = stdio_command()
    return {
        "transport": "stdio",
        "command": command,
        "args": args,
        "env": {"ORDER_DESK_TOKEN": ENV_SECRET},
        **extra,
    }


def call(skill, config, tool, **arguments):
    return skill.call_tool(
        SkillContext(bot=None, config=config, text="", tool_name=tool, arguments=arguments)
    )


# Listing ----------------------------------------------------------------------------------


def test_lists_the_tools_of_a_streamable_http_server(skill, mcp_http):
    tools = skill.tools(http_config(mcp_http))

    assert [tool["name"] for tool in tools] == ALL_TOOLS
    add = tools[0]
    assert add["description"] == "Add two whole numbers."
    assert add["parameters"]["type"] == "object"
    assert add["parameters"]["required"] == ["a", "b"]
    assert add["parameters"]["properties"]["a"]["type"] == "integer"
    assert all(h.get("authorization") == f"Bearer {TOKEN}" for h in mcp_http.requests)


def test_the_allow_list_filters_the_tools_and_refuses_other_calls(skill, mcp_http):
    config = http_config(mcp_http, allowed_tools=["lookup_order", "add"])

    tools = skill.tools(config)
    asked = len(mcp_http.requests)
    with pytest.raises(SkillError) as refused:
        call(skill, config, "secret_env", name="PATH")

    assert [tool["name"] for tool in tools] == ["add", "lookup_order"]  # the server's order
    assert "'secret_env' is not offered" in str(refused.value)
    assert len(mcp_http.requests) == asked  # refused before connecting


def test_the_tool_list_is_cached_per_configuration(skill, mcp_http):
    config = http_config(mcp_http)

    first = skill.tools(config)
    after_first = len(mcp_http.requests)
    first[0]["parameters"]["properties"].clear()  # a caller's change stays its own
    again = skill.tools(config)
    other = skill.tools({**config, "allowed_tools": ["add"]})  # another configuration

    assert after_first > 0
    assert again[0]["parameters"]["properties"]  # the cache was not changed
    assert [tool["name"] for tool in again] == ALL_TOOLS
    assert len(mcp_http.requests) > after_first  # the other configuration listed anew
    assert [tool["name"] for tool in other] == ["add"]
    before = len(mcp_http.requests)
    skill.tools(config)
    assert len(mcp_http.requests) == before  # listed once, served from the cache


def test_an_unreachable_server_offers_no_tools_and_warns(skill, mcp_http, caplog):
    wrong_token = http_config(mcp_http, headers={"Authorization": "Bearer wrong-SECRET-1"})
    stopped = FakeMcpHttpServer().start()
    stopped.stop()
    down = http_config(stopped)

    with caplog.at_level(logging.WARNING, logger="apps.skills.builtins.mcp_client"):
        refused_tools = skill.tools(wrong_token)
        down_tools = skill.tools(down)
    asked = len(mcp_http.requests)
    again = skill.tools(wrong_token)  # a failure is remembered briefly too

    assert refused_tools == [] and down_tools == [] and again == []
    assert len(mcp_http.requests) == asked
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("answered HTTP 401" in w for w in warnings)
    assert any(f"127.0.0.1:{stopped.port}" in w and "unreachable" in w for w in warnings)
    assert not any("SECRET" in w for w in warnings)


def test_server_tools_says_why_it_cannot_list(skill, mcp_http):
    with pytest.raises(SkillError) as refused:
        skill.server_tools(http_config(mcp_http, headers={"Authorization": "Bearer bad-SECRET"}))

    assert str(refused.value) == (
        f"MCP server http://127.0.0.1:{mcp_http.port}: list tools failed: answered HTTP 401"
    )
    assert refused.value.details["http_status"] == 401
    assert refused.value.retryable is False


def test_tools_can_be_asked_from_a_thread_that_runs_an_event_loop(skill, mcp_http):
    async def on_a_loop():
        return skill.tools(http_config(mcp_http))  # blocks this loop: a helper thread runs it

    assert [tool["name"] for tool in asyncio.run(on_a_loop())] == ALL_TOOLS


# Calling ----------------------------------------------------------------------------------


def test_calls_a_tool_and_answers_with_its_text(skill, mcp_http):
    config = http_config(mcp_http)

    added = call(skill, config, "add", a=2, b=40)
    order = call(skill, config, "lookup_order", order_id="A-1001")
    picture = call(skill, config, "picture")

    assert added.text == "42"
    assert order.text == "Order A-1001: shipped on 3 May, arriving 6 May"
    assert picture.text == "A red dot:\n[image: image/png]"
    assert picture.details["content"] == ["text", "image"]
    assert picture.details["server"] == f"http://127.0.0.1:{mcp_http.port}"
    assert picture.details["tool"] == "picture"


def test_a_tool_error_raises_skill_error_with_details(skill, mcp_http):
    with pytest.raises(SkillError) as failed:
        call(skill, http_config(mcp_http, failure_reply="订单系统暂时不可用"), "fail", reason="x")

    assert (
        str(failed.value)
        == "MCP tool fail answered an error: Error executing tool fail: refused: x"
    )
    assert failed.value.user_message == "订单系统暂时不可用"
    assert failed.value.details["is_error"] is True
    assert failed.value.details["tool"] == "fail"
    assert failed.value.retryable is False


def test_a_transport_failure_raises_a_retryable_skill_error(skill):
    stopped = FakeMcpHttpServer().start()
    stopped.stop()

    with pytest.raises(SkillError) as failed:
        call(skill, http_config(stopped), "add", a=1, b=2)

    assert str(failed.value).startswith(
        f"MCP server http://127.0.0.1:{stopped.port}: call add failed: unreachable (ConnectError"
    )
    assert failed.value.retryable is True
    assert "SECRET" not in str(failed.value) + json.dumps(failed.value.details)
    assert "Please try again later" in str(failed.value.user_message)


def test_a_slow_http_tool_is_cut_at_the_call_timeout(skill, mcp_http):
    with pytest.raises(SkillError) as failed:
        call(skill, http_config(mcp_http, call_timeout=0.3), "slow", seconds=30)

    assert str(failed.value).endswith("call slow failed: could not call slow within 0.3s")
    assert failed.value.retryable is True


# stdio ------------------------------------------------------------------------------------


def test_a_stdio_server_lists_and_calls_with_its_environment(skill):
    config = stdio_config(allowed_tools=["secret_env", "add"])
    children_before = set(psutil.Process().children(recursive=True))

    tools = skill.tools(config)
    result = call(skill, config, "secret_env", name="ORDER_DESK_TOKEN")

    assert [tool["name"] for tool in tools] == ["add", "secret_env"]  # the server's order
    assert result.text == ENV_SECRET  # `env` reached the server's process
    assert result.details["server"] == "stdio:" + sys.executable.rsplit("/", 1)[-1]
    # The child of each run was ended with it.
    assert set(psutil.Process().children(recursive=True)) <= children_before


def test_a_stdio_child_is_killed_after_a_timeout(skill, tmp_path):
    pid_file = tmp_path / "pid"
    config = stdio_config(
        call_timeout=0.5,
        tool="stuck",
        arguments={"seconds": 60},
        env={"FAKE_MCP_PID_FILE": str(pid_file), "FAKE_MCP_IGNORE_SIGTERM": "1"},
    )
    context = SkillContext(bot=None, config=config, text="stuck")
    children_before = set(psutil.Process().children(recursive=True))

    with pytest.raises(SkillError) as failed:
        skill_execute(skill=skill, context=context)  # the project's runner, with its limit

    assert "call stuck failed: could not call stuck within 0.5s" in str(failed.value)
    pid = int(pid_file.read_text())
    # Stopped by SIGKILL (it ignored stdin closing and SIGTERM), and reaped: no zombie.
    assert not psutil.pid_exists(pid)
    assert set(psutil.Process().children(recursive=True)) <= children_before


def test_a_stdio_command_that_cannot_start_is_a_clear_failure(skill, settings):
    settings.MCP_STDIO_COMMANDS = ["/no/such/mcp-server"]
    config = {"transport": "stdio", "command": "/no/such/mcp-server"}

    with pytest.raises(SkillError) as failed:
        call(skill, config, "add", a=1, b=2)

    assert str(failed.value) == (
        "MCP server stdio:mcp-server: call add failed: could not start: No such file or directory"
    )


def test_stdio_runs_only_the_programs_this_installation_allows(skill, settings):
    config = stdio_config()
    settings.MCP_STDIO_COMMANDS = []

    errors = skill.config_errors(config)
    with pytest.raises(SkillError) as refused:  # saved earlier, refused when run
        call(skill, config, "add", a=1, b=2)
    tools = skill.tools(config)

    assert errors == [
        "command: not in MCP_STDIO_COMMANDS, the programs this installation runs (allowed: none)"
    ]
    assert "not in MCP_STDIO_COMMANDS" in str(refused.value)
    assert tools == []
    settings.MCP_STDIO_COMMANDS = ["*"]
    assert skill.config_errors(config) == []


# A routing rule runs it ---------------------------------------------------------------------


def test_handle_runs_the_configured_tool_with_arguments_from_the_message(skill, mcp_http):
    config = http_config(mcp_http, tool="lookup_order", arguments={"order_id": "{text}"})

    result = skill.handle(SkillContext(bot=None, config=config, text="A-1002"))

    assert result.text == "Order A-1002: packed, leaving the warehouse today"


def test_handle_without_a_tool_says_the_skill_is_for_models(skill, mcp_http):
    with pytest.raises(SkillError) as refused:
        skill.handle(SkillContext(bot=None, config=http_config(mcp_http), text="hi"))

    assert "tools are offered to models" in str(refused.value)
    assert mcp_http.requests == []


# Validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"transport": "streamable_http"}, "'url' is a required property"),
        ({"transport": "stdio"}, "'command' is a required property"),
        ({"transport": "sse", "url": "http://x.example/mcp"}, "'sse' is not one of"),
        (
            {"transport": "streamable_http", "url": "ftp://files.example/mcp"},
            "url: must be an http:// or https:// address with a host",
        ),
        (
            {"transport": "streamable_http", "url": "http://x.example/mcp", "command": "x"},
            "command: only for stdio",
        ),
        (
            {"transport": "stdio", "command": sys.executable, "url": "http://x.example/mcp"},
            "url: only for streamable_http",
        ),
        ({"transport": "stdio", "command": "   "}, "command: must name a program"),
        (
            {"transport": "streamable_http", "url": "http://x.example/mcp", "arguments": {}},
            "arguments: only with tool",
        ),
        (
            {
                "transport": "streamable_http",
                "url": "http://x.example/mcp",
                "allowed_tools": ["add"],
                "tool": "echo",
            },
            "tool: not in allowed_tools",
        ),
        (
            {
                "transport": "streamable_http",
                "url": "http://x.example/mcp",
                "tool": "echo",
                "arguments": {"text": "{text"},
            },
            "arguments: braces must be paired",
        ),
        (
            {"transport": "streamable_http", "url": "http://x.example/mcp", "call_timeout": 900},
            "900 is greater than the maximum of 300",
        ),
    ],
)
def test_invalid_configurations_are_refused(skill, config, error):
    assert any(error in problem for problem in skill.config_errors(config)), skill.config_errors(
        config
    )


def test_valid_configurations_pass(skill):
    assert (
        skill.config_errors({"transport": "streamable_http", "url": "https://mcp.example/mcp"})
        == []
    )
    assert skill.config_errors(stdio_config(allowed_tools=["add"], tool="add")) == []


# Admin, API, audit ----------------------------------------------------------------------------


@pytest.fixture
def operator(db, django_user_model):
    roles_sync()
    user = django_user_model.objects.create_user("op", is_staff=True)
    user.groups.add(Group.objects.get(name="Operator"))
    return user


@pytest.fixture
def bot(db):
    return make_web_bot(profile=None, name="orders")


def test_the_admin_shows_the_servers_tools_and_never_its_secrets(client, operator, bot, mcp_http):
    instance = skill_instance_create(
        bot=bot,
        name="Order desk",
        skill="mcp",
        config=http_config(mcp_http, allowed_tools=["lookup_order", "add"]),
    )
    client.force_login(operator)

    page = client.get(f"/admin/skills/skillinstance/{instance.pk}/change/").content.decode()

    assert "<code>lookup_order</code> Where an order is, by its number (e.g. A-1001)." in page
    assert "<small>order_id</small>" in page
    assert page.count("not offered") == len(ALL_TOOLS) - 2  # left out by allowed_tools
    assert TOKEN not in page
    assert "&lt;set&gt;" in page  # the headers, masked in the JSON


def test_the_admin_says_why_a_server_cannot_be_listed(client, operator, bot, mcp_http):
    instance = skill_instance_create(
        bot=bot,
        name="Order desk",
        skill="mcp",
        config=http_config(mcp_http, headers={"Authorization": "Bearer wrong-SECRET-2"}),
    )
    client.force_login(operator)

    page = client.get(f"/admin/skills/skillinstance/{instance.pk}/change/").content.decode()

    assert "Could not list the tools:" in page
    assert "answered HTTP 401" in page
    assert "wrong-SECRET-2" not in page


def test_api_and_audit_mask_headers_and_env(operator, bot):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=operator).key}")
    config = {
        "transport": "streamable_http",
        "url": "https://mcp.example/mcp",
        "headers": {"Authorization": f"Bearer {TOKEN}"},
    }

    created = api.post(
        "/api/v1/skills/",
        {"bot": str(bot.pk), "name": "Order desk", "skill": "mcp", "config": config},
        format="json",
    )
    skill_id = created.json()["id"]
    read = api.get(f"/api/v1/skills/{skill_id}/").json()
    moved = api.patch(
        f"/api/v1/skills/{skill_id}/",
        {"config": {**stdio_config(), "env": {"ORDER_DESK_TOKEN": ENV_SECRET}}},
        format="json",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT config FROM skills_skillinstance WHERE id = %s", [skill_id])
        (stored,) = cursor.fetchone()

    assert created.status_code == 201, created.content
    assert moved.status_code == 200, moved.content
    assert read["config"]["headers"] == "<set>"
    assert moved.json()["config"]["env"] == "<set>"
    shown = created.content.decode() + json.dumps(read) + moved.content.decode()
    assert TOKEN not in shown and ENV_SECRET not in shown
    assert TOKEN not in stored and ENV_SECRET not in stored  # encrypted at rest
    instance = SkillInstance.objects.get(pk=skill_id)
    assert instance.config["env"] == {"ORDER_DESK_TOKEN": ENV_SECRET}
    events = AuditEvent.objects.filter(target_type="skills.skillinstance").order_by("id")
    assert [event.action for event in events] == ["skillinstance.create", "skillinstance.update"]
    assert events[0].changes["config.headers"] == {"from": None, "to": "<set>"}
    assert events[1].changes["config.env"] == {"from": None, "to": "<set>"}
    assert all(TOKEN not in str(e.changes) and ENV_SECRET not in str(e.changes) for e in events)
