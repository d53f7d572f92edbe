"""The model → tools → model loop of the model client, against the loopback model fake
(which streams tool calls as OpenAI does) and a loopback ticket system behind a real
http_action skill: results reach the model, bounds hold, failures become results, and a
fallback continues from the results so far instead of acting twice."""

from __future__ import annotations

import json

import pytest

from apps.providers.client import ChatMessage, ModelError, stream_reply
from apps.providers.tool_loop import STOP_NOTE, ToolLoop
from apps.skills.base import SkillContext
from apps.skills.selectors import bot_skills_enabled
from apps.skills.services import skill_instance_create
from apps.skills.tools import FUNCTION_NAME, TurnTools, tools_for_bot
from tests.factories import make_profile, make_provider, make_web_bot
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.ticket_system import FakeTicketSystem

TICKET_PARAMETERS = {
    "type": "object",
    "properties": {"title": {"type": "string", "description": "What is wrong, in a line."}},
    "required": ["title"],
}


@pytest.fixture
def tickets():
    server = FakeTicketSystem().start()
    yield server
    server.stop()


@pytest.fixture
def backup_openai():
    server = FakeOpenAI(reply="Backup here.").start()
    yield server
    server.stop()


@pytest.fixture
def bot(db):
    return make_web_bot(profile=None, name="helpdesk")


@pytest.fixture
def ticket_skill(bot, tickets):
    return skill_instance_create(
        bot=bot,
        name="Open a ticket",
        skill="http_action",
        config={
            "url": f"{tickets.url}/api/tickets",
            "body": {"title": "{args.title}", "reporter": "{user_name}"},
            "retries": 0,
            "timeout": 5,
            "reply_template": "Ticket {ticket_id} opened",
            "failure_reply": "The ticket system is down; please call the help desk.",
            "tool_description": "Open a ticket in the help desk's ticket system.",
            "tool_parameters": TICKET_PARAMETERS,
        },
    )


def tool_profile(server, **fields):
    provider = make_provider(base_url=server.base_url, max_retries=fields.pop("max_retries", 0))
    return make_profile(provider=provider, supports_tools=True, **fields)


def loop_for(bot, **bounds) -> ToolLoop:
    context = SkillContext(bot=bot, config={}, text="printer", user_name="Ada", platform="web")
    return ToolLoop(TurnTools(bot_skills_enabled(bot_id=bot.pk), context), **bounds)


def ask(profile, tools: ToolLoop, text="The printer on floor 3 is jammed"):
    deltas: list[str] = []
    reply = stream_reply(
        profile=profile, messages=[ChatMessage("user", text)], on_delta=deltas.append, tools=tools
    )
    return reply, deltas


def call(title="Printer jam on floor 3", name="open_a_ticket"):
    return {"name": name, "arguments": {"title": title}}


def test_a_call_is_run_and_its_result_goes_back_to_the_model(
    fake_openai, bot, ticket_skill, tickets
):
    profile = tool_profile(fake_openai)
    fake_openai.chunk_size = 5  # the arguments arrive in several pieces
    fake_openai.tool_plan = [[call()]]
    tools = loop_for(bot)

    reply, deltas = ask(profile, tools)

    assert reply.text == "Done: Ticket T-1001 opened" == "".join(deltas)
    first, second = fake_openai.requests
    assert first["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "open_a_ticket",
                "description": "Open a ticket in the help desk's ticket system.",
                "parameters": TICKET_PARAMETERS,
            },
        }
    ]
    assert "tool_choice" not in first
    (request,) = tickets.requests
    assert json.loads(request.body) == {"title": "Printer jam on floor 3", "reporter": "Ada"}
    assistant, result = second["messages"][-2:]
    assert assistant["role"] == "assistant" and assistant["content"] is None
    [sent] = assistant["tool_calls"]
    assert sent["function"] == {
        "name": "open_a_ticket",
        "arguments": '{"title": "Printer jam on floor 3"}',
    }
    assert result == {
        "role": "tool",
        "tool_call_id": sent["id"],
        "content": "Ticket T-1001 opened",
    }
    [record] = reply.tool_calls
    assert record["name"] == "open_a_ticket" and record["step"] == 1
    assert record["arguments"] == '{"title": "Printer jam on floor 3"}'
    assert record["result"] == "Ticket T-1001 opened" and record["error"] == ""
    assert record["profile"] == profile.name and record["id"] == sent["id"]
    assert record["skill"] == "http_action" and record["skill_instance_id"] == ticket_skill.pk
    assert record["attempts"][0]["outcome"] == "201"
    # Both requests' usage counts: the fake reports 11 prompt tokens per request.
    assert reply.usage.prompt_tokens == 22
    assert [a["outcome"] for a in reply.attempts] == ["answered"]


def test_parallel_calls_in_one_step_are_assembled_by_index_and_run_in_order(
    fake_openai, bot, ticket_skill, tickets
):
    profile = tool_profile(fake_openai)
    fake_openai.chunk_size = 3
    fake_openai.tool_plan = [[call("Printer jam"), call("Broken chair")]]

    reply, _ = ask(profile, loop_for(bot))

    assert [json.loads(r.body)["title"] for r in tickets.requests] == [
        "Printer jam",
        "Broken chair",
    ]
    assert reply.text == "Done: Ticket T-1001 opened | Ticket T-1002 opened"
    assert [(r["step"], r["result"]) for r in reply.tool_calls] == [
        (1, "Ticket T-1001 opened"),
        (1, "Ticket T-1002 opened"),
    ]
    results = fake_openai.requests[1]["messages"][-2:]
    calls = fake_openai.requests[1]["messages"][-3]["tool_calls"]
    assert [m["tool_call_id"] for m in results] == [c["id"] for c in calls]
    assert len({c["id"] for c in calls}) == 2


def test_text_of_a_step_that_calls_tools_is_shown_and_kept(fake_openai, bot, ticket_skill, tickets):
    profile = tool_profile(fake_openai)
    fake_openai.tool_plan = [{"text": "Let me open a ticket.", "calls": [call()]}]

    reply, deltas = ask(profile, loop_for(bot))

    assert reply.text == "Let me open a ticket.\n\nDone: Ticket T-1001 opened"
    assert "".join(deltas) == reply.text
    assistant = fake_openai.requests[1]["messages"][-2]
    assert assistant["content"] == "Let me open a ticket."


def test_the_step_bound_asks_for_an_answer_without_more_calls(
    fake_openai, bot, ticket_skill, tickets
):
    profile = tool_profile(fake_openai)
    fake_openai.tool_plan = [[call(f"ticket {n}")] for n in range(5)]

    reply, _ = ask(profile, loop_for(bot, max_steps=2))

    assert len(tickets.requests) == 2
    assert [r["step"] for r in reply.tool_calls] == [1, 2]
    *calling, last = fake_openai.requests
    assert len(calling) == 2 and all("tool_choice" not in r for r in calling)
    assert last["tool_choice"] == "none" and last["tools"]  # still described, not callable
    assert last["messages"][-1] == {"role": "system", "content": STOP_NOTE}
    assert reply.text == "Done: Ticket T-1001 opened | Ticket T-1002 opened"


def test_the_time_bound_ends_a_slow_call_and_asks_for_an_answer(
    fake_openai, bot, ticket_skill, tickets
):
    profile = tool_profile(fake_openai)
    tickets.delay = 3.0  # longer than the loop's time for tools
    fake_openai.tool_plan = [[call()], [call("again")]]

    reply, _ = ask(profile, loop_for(bot, time_limit=0.3))

    [record] = reply.tool_calls
    # Within what was left of the 0.3 s (a hair less than 0.3 s by the time it started).
    assert record["error"].startswith("skill failed: skill http_action did not answer within 0.")
    assert record["error"].endswith("s (the time left for tools in this answer)")
    assert record["result"] == ""
    last = fake_openai.requests[-1]
    assert len(fake_openai.requests) == 2 and last["tool_choice"] == "none"
    assert last["messages"][-2]["content"].startswith("error: the tool failed")


def test_a_failing_tool_gives_the_model_an_error_result(fake_openai, bot, ticket_skill, tickets):
    profile = tool_profile(fake_openai)
    tickets.fail_next(503)
    fake_openai.tool_plan = [[call()]]

    reply, _ = ask(profile, loop_for(bot))

    [record] = reply.tool_calls
    assert record["error"].startswith("skill failed: POST http://127.0.0.1:")
    assert "503" in record["error"]
    result = fake_openai.requests[1]["messages"][-1]
    assert result["role"] == "tool"
    assert result["content"].startswith("error: the tool failed: POST")
    assert "please call the help desk" in result["content"]  # what the user should be told
    assert reply.text.startswith("Done: error: the tool failed")


def test_wrong_names_and_arguments_are_refused_without_running_anything(
    fake_openai, bot, ticket_skill, tickets
):
    profile = tool_profile(fake_openai)
    fake_openai.tool_plan = [
        [
            {"name": "delete_everything", "arguments": {}},
            {"name": "open_a_ticket", "arguments": "{not json"},
            {"name": "open_a_ticket", "arguments": {"title": 42}},
            {"name": "open_a_ticket", "arguments": {}},
        ]
    ]

    reply, _ = ask(profile, loop_for(bot))

    assert tickets.requests == []
    errors = [record["error"] for record in reply.tool_calls]
    assert errors[0] == "there is no tool called 'delete_everything'"
    assert errors[1].startswith("the arguments are not valid JSON")
    assert errors[2] == "invalid arguments: title: 42 is not of type 'string'"
    assert errors[3] == "invalid arguments: 'title' is a required property"
    results = [m["content"] for m in fake_openai.requests[1]["messages"] if m["role"] == "tool"]
    assert results == [f"error: {error}" for error in errors]


def test_a_fallback_continues_from_the_results_so_far(
    fake_openai, backup_openai, bot, ticket_skill, tickets
):
    backup = tool_profile(backup_openai, name="backup")
    primary = tool_profile(fake_openai, name="primary", fallback=backup)
    fake_openai.tool_plan = [[call()], {"fail": 500}]

    reply, _ = ask(primary, loop_for(bot))

    assert len(tickets.requests) == 1  # the ticket was not opened twice
    assert reply.profile == backup and reply.text == "Done: Ticket T-1001 opened"
    assert [(a["profile"], a["outcome"]) for a in reply.attempts] == [
        ("primary", "failed"),
        ("backup", "answered"),
    ]
    [continued] = backup_openai.requests
    assert [m["role"] for m in continued["messages"][-3:]] == ["user", "assistant", "tool"]
    assert continued["messages"][-1]["content"] == "Ticket T-1001 opened"
    assert [r["profile"] for r in reply.tool_calls] == ["primary"]


def test_a_fallback_without_tool_support_reads_the_results_as_a_note(
    fake_openai, backup_openai, bot, ticket_skill, tickets
):
    backup = make_profile(provider=make_provider(base_url=backup_openai.base_url))
    primary = tool_profile(fake_openai, fallback=backup)
    fake_openai.tool_plan = [[call()], {"fail": 500}]

    reply, _ = ask(primary, loop_for(bot))

    assert reply.profile == backup and reply.text == "Backup here."
    [continued] = backup_openai.requests
    assert "tools" not in continued
    assert all(m["role"] != "tool" and "tool_calls" not in m for m in continued["messages"])
    note = continued["messages"][-1]
    assert note["role"] == "system"
    assert (
        'open_a_ticket({"title": "Printer jam on floor 3"}): Ticket T-1001 opened'
        in (note["content"])
    )


def test_when_every_profile_fails_the_error_carries_the_calls_made(
    fake_openai, bot, ticket_skill, tickets
):
    profile = tool_profile(fake_openai)
    fake_openai.tool_plan = [[call()], {"fail": 503}]

    with pytest.raises(ModelError) as raised:
        ask(profile, loop_for(bot))

    assert raised.value.retryable
    assert [r["result"] for r in raised.value.tool_calls] == ["Ticket T-1001 opened"]


def test_a_profile_without_tool_support_is_sent_no_tools(fake_openai, bot, ticket_skill, tickets):
    profile = make_profile(provider=make_provider(base_url=fake_openai.base_url))
    fake_openai.tool_plan = [[call()]]

    reply, _ = ask(profile, loop_for(bot))

    assert reply.text == fake_openai.reply and reply.tool_calls == []
    assert "tools" not in fake_openai.requests[0] and tickets.requests == []


def test_function_names_are_valid_unique_and_map_back_to_their_skill(bot, tickets):
    config = {
        "url": f"{tickets.url}/api/tickets",
        "reply_template": "ok",
        "tool_description": "Open a ticket.",
    }
    first = skill_instance_create(
        bot=bot, name="Open a ticket!", skill="http_action", config=config
    )
    second = skill_instance_create(
        bot=bot, name="open a ticket", skill="http_action", config=config
    )
    chinese = skill_instance_create(bot=bot, name="开工单", skill="http_action", config=config)
    long = skill_instance_create(bot=bot, name="x" * 90, skill="http_action", config=config)
    silent = dict(config)
    silent.pop("tool_description")
    skill_instance_create(bot=bot, name="Not a tool", skill="http_action", config=silent)
    skill_instance_create(bot=bot, name="Menu", skill="help_menu")

    toolbox = tools_for_bot(bot)

    by_instance = {tool.instance_id: name for name, tool in toolbox.tools.items()}
    # Which of the two alike names comes first is the database's collation's choice.
    assert {by_instance.pop(first.pk), by_instance.pop(second.pk)} == {
        "open_a_ticket",
        "open_a_ticket_2",
    }
    assert by_instance == {chinese.pk: f"http_action_{chinese.pk}", long.pk: "x" * 64}
    assert all(FUNCTION_NAME.match(name) for name in toolbox.tools)
    assert [spec["function"]["name"] for spec in toolbox.specs] == list(toolbox.tools)
