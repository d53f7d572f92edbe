"""A hand-off in a real browser: a Telegram user asks for a person, a routing rule hands the
conversation to staff, and the console tells staff at once (a notice, the waiting count in
the navigation, the row marked) until someone takes it."""

from __future__ import annotations

import httpx
import pytest

from apps.conversations.models import Conversation
from apps.routing.services import routing_rule_create
from tests.browser.conftest import admin_login
from tests.browser.test_console_browser import _staff
from tests.telegram_updates import private_text_update

pytestmark = pytest.mark.browser


def test_a_hand_off_is_announced_in_the_console_until_taken(
    worker, django_user_model, telegram_bot, fake_telegram, fake_openai, new_page, live_server_url
):
    operator = _staff(django_user_model, "operator", "Console operators")
    viewer = _staff(django_user_model, "viewer", "Console viewers")
    routing_rule_create(name="humans", keywords=["人工", "human"], action="handoff")
    page = new_page()
    admin_login(page, operator.username, "operator-pw-12345")
    page.wait_for_selector("#live-state:text('Live')")
    assert page.locator("#waiting-badge").is_hidden()

    response = httpx.post(
        f"{live_server_url}/api/webhooks/telegram/{telegram_bot.pk}/",
        json=private_text_update("我要人工客服"),
        headers={"X-Telegram-Bot-Api-Secret-Token": telegram_bot.config["webhook_secret"]},
    )
    assert response.status_code == 200, response.text

    notice = page.locator("#handoff-list li.handoff")
    notice.wait_for()
    conversation = Conversation.objects.get()
    assert notice.get_attribute("data-id") == str(conversation.pk)
    text = notice.inner_text()
    assert f"Ada Lovelace on {telegram_bot.name} asks for staff" in text
    assert "rule “humans”" in text and "我要人工客服" in text
    page.wait_for_selector("#waiting-badge:text('1 waiting')")
    assert page.title().startswith("(1) ")
    page.wait_for_selector(
        f"#conversations tr[data-id='{conversation.pk}'][data-state='waiting']"
        " .state--waiting:text('Waiting for staff')"
    )
    # A colleague who opens the console later sees the same count, served with the page.
    colleague = new_page()
    admin_login(colleague, viewer.username, "viewer-pw-12345")
    colleague.wait_for_selector("#live-state:text('Live')")
    assert colleague.locator("#waiting-badge").inner_text() == "1 waiting"

    # The operator opens it from the notice and takes it: nobody waits any more.
    notice.locator("a").click()
    page.wait_for_url(f"**/console/conversations/{conversation.pk}/")
    page.wait_for_selector("#state.state--waiting")
    page.wait_for_selector("#live-state:text('Live')")
    page.click("#take-over")
    page.wait_for_selector("#state:has-text('Taken over · operator')")
    colleague.wait_for_selector(
        f"#conversations tr[data-id='{conversation.pk}'][data-state='taken_over']"
    )
    colleague.wait_for_selector("#waiting-badge", state="hidden")
    assert not colleague.title().startswith("(")
    assert fake_openai.chat_requests() == []
