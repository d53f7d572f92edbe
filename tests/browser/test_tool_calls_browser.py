"""The console in a real browser: the tools a model called for an answer appear in the
live conversation view as the answer is recorded, and stay after a reload."""

from __future__ import annotations

import pytest

from apps.conversations.choices import Direction, MessageStatus
from apps.conversations.models import Conversation, Message
from apps.skills.services import skill_instance_create
from tests.browser.conftest import admin_login
from tests.browser.test_console_browser import _post_update, _staff
from tests.fakes.server import wait_for
from tests.fakes.ticket_system import FakeTicketSystem

pytestmark = pytest.mark.browser


@pytest.fixture
def tickets():
    server = FakeTicketSystem().start()
    yield server
    server.stop()


def test_tool_calls_appear_live_in_the_conversation_view(
    worker,
    django_user_model,
    telegram_bot,
    fake_telegram,
    fake_openai,
    tickets,
    new_page,
    live_server_url,
):
    profile = telegram_bot.profile
    profile.supports_tools = True
    profile.save()
    skill_instance_create(
        bot=telegram_bot,
        name="Open a ticket",
        skill="http_action",
        config={
            "url": f"{tickets.url}/api/tickets",
            "body": {"title": "{args.title}"},
            "retries": 0,
            "reply_template": "工单已创建：#{ticket_id}",
            "tool_description": "Open a ticket.",
        },
    )
    viewer = _staff(django_user_model, "viewer", "Console viewers")
    fake_openai.tool_plan = [None]  # the first message is answered without tools
    _post_update(live_server_url, telegram_bot, "Hello")
    wait_for(
        lambda: Message.objects.filter(
            direction=Direction.OUT, status=MessageStatus.DELIVERED
        ).exists()
    )
    conversation = Conversation.objects.get()
    page = new_page()
    admin_login(
        page, viewer.username, "viewer-pw-12345", f"/console/conversations/{conversation.pk}/"
    )
    page.wait_for_selector("#live-state:text('Live')")
    assert page.locator(".tool-calls").count() == 0

    fake_openai.tool_plan = [[{"name": "open_a_ticket", "arguments": {"title": "Printer"}}]]
    _post_update(live_server_url, telegram_bot, "Please open a ticket: the printer is jammed")

    call = page.locator(".tool-calls li[data-tool='open_a_ticket']")
    call.wait_for()
    assert '{"title": "Printer"}' in call.inner_text()
    assert "工单已创建：#T-1001" in call.inner_text()
    assert page.locator(".tool-calls summary").inner_text() == "1 tool call"
    page.reload()
    page.locator(".tool-calls li[data-tool='open_a_ticket']").wait_for()
    assert "工单已创建：#T-1001" in page.locator(".tool-calls").inner_text()
