"""The console in a real browser: a Telegram user's conversation appears live, its answer
streams in token by token, staff take over and reply through Telegram, hand back, export."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import Group, Permission

from apps.conversations.models import Conversation
from tests.browser.conftest import admin_login
from tests.console.conftest import GROUPS
from tests.fakes.server import wait_for
from tests.telegram_updates import private_text_update

pytestmark = pytest.mark.browser

SCREENSHOT = os.environ.get("CONSOLE_SCREENSHOT", "")


def _staff(django_user_model, name: str, group: str):
    user = django_user_model.objects.create_user(name, password=f"{name}-pw-12345", is_staff=True)
    group_row, _ = Group.objects.get_or_create(name=group)
    group_row.permissions.set(
        Permission.objects.filter(
            content_type__app_label="conversations", codename__in=GROUPS[group]
        )
    )
    user.groups.add(group_row)
    return user


def _post_update(live_server_url, bot, text: str, update_id: int | None = None) -> None:
    response = httpx.post(
        f"{live_server_url}/api/webhooks/telegram/{bot.pk}/",
        json=private_text_update(text, update_id=update_id),
        headers={"X-Telegram-Bot-Api-Secret-Token": bot.config["webhook_secret"]},
    )
    assert response.status_code == 200, response.text


def test_console_live_takeover_and_export(
    worker, django_user_model, telegram_bot, fake_telegram, fake_openai, new_page, live_server_url
):
    operator = _staff(django_user_model, "operator", "Console operators")
    viewer = _staff(django_user_model, "viewer", "Console viewers")
    fake_openai.reply = "Hello Ada, how can I help?"

    # Staff log in through the admin and open the live list: empty at first.
    page = new_page()
    admin_login(page, operator.username, "operator-pw-12345")
    page.wait_for_selector("#live-state:text('Live')")
    assert page.locator("#conversations tbody tr.empty").count() == 1
    colleague = new_page()
    admin_login(colleague, viewer.username, "viewer-pw-12345")
    colleague.wait_for_selector("#live-state:text('Live')")

    # A Telegram user writes: the conversation appears without a reload, then its answer.
    _post_update(live_server_url, telegram_bot, "Hi there")
    row = page.locator("#conversations tbody tr[data-id]")
    row.filter(has_text="Ada Lovelace").wait_for()
    page.wait_for_selector(
        "#conversations tr[data-id] td.last:has-text('Hello Ada, how can I help?')"
    )
    assert page.locator("#conversations tbody tr.empty").count() == 0
    conversation = Conversation.objects.get()
    assert row.first.get_attribute("data-id") == str(conversation.pk)
    assert "Telegram" in row.first.inner_text()

    # Open the conversation and watch the next answer stream in, token by token.
    page.click("#conversations a:has-text('Ada Lovelace')")
    page.wait_for_url(f"**/console/conversations/{conversation.pk}/")
    page.wait_for_selector("#live-state:text('Live')")
    page.evaluate(
        """() => {
          window.seenTexts = [];
          const log = document.getElementById("transcript");
          new MutationObserver(() => {
            const last = log.querySelector("li.msg--assistant:last-child .msg__text");
            if (last) window.seenTexts.push(last.textContent);
          }).observe(log, {subtree: true, childList: true, characterData: true});
        }"""
    )
    fake_openai.reply = "Streaming answers arrive in small pieces, one after another."
    fake_openai.chunk_size = 5
    fake_openai.chunk_delay = 0.15  # slower than the event batches, so pieces show one by one
    _post_update(live_server_url, telegram_bot, "How do answers arrive?")
    page.wait_for_selector(
        "#transcript li.msg--assistant[data-status='delivered']"
        ":has-text('Streaming answers arrive in small pieces, one after another.')"
    )
    seen = page.evaluate("window.seenTexts")
    partial = {
        text
        for text in seen
        if text and text != fake_openai.reply and fake_openai.reply.startswith(text)
    }
    # More than one growing prefix was shown before the whole answer.
    assert len(partial) >= 3
    assert all(fake_openai.reply.startswith(text) for text in partial)
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT.replace(".png", "-conversation.png"), full_page=True)

    # Take over: the AI stops; the colleague's list shows the new state live.
    page.click("#take-over")
    page.wait_for_selector("#state:has-text('Taken over · operator')")
    colleague.wait_for_selector(
        f"#conversations tr[data-id='{conversation.pk}'] .state--taken_over:has-text('operator')"
    )
    requests_before = len(fake_openai.requests)
    _post_update(live_server_url, telegram_bot, "Can I talk to a person?")
    page.wait_for_selector(
        "#transcript li.msg--user[data-status='skipped']:has-text('Can I talk to a person?')"
    )
    assert len(fake_openai.requests) == requests_before

    # Reply as staff: delivered through Telegram.
    page.fill("#reply-text", "Hi Ada, Grace here from support.")
    page.press("#reply-text", "Enter")
    page.wait_for_selector(
        "#transcript li.msg--staff[data-status='delivered']:has-text('Grace here from support')"
    )
    sent = wait_for(
        lambda: [
            call
            for call in fake_telegram.sent("sendMessage")
            if call.params["text"] == "Hi Ada, Grace here from support."
        ]
    )
    assert int(sent[0].params["chat_id"]) == 4242

    # Hand back: the AI answers again.
    page.click("#hand-back")
    page.wait_for_selector("#state.state--ai")
    colleague.wait_for_selector(f"#conversations tr[data-id='{conversation.pk}'] .state--ai")
    fake_openai.reply = "The assistant is back."
    _post_update(live_server_url, telegram_bot, "Thanks!")
    page.wait_for_selector(
        "#transcript li.msg--assistant[data-status='delivered']:has-text('The assistant is back.')"
    )

    if SCREENSHOT:
        page.goto("/console/")
        page.wait_for_selector("#live-state:text('Live')")
        page.screenshot(path=SCREENSHOT, full_page=True)

    # History: filter by text and export what matched, as CSV and as JSONL.
    page.goto("/console/history/?text=person")
    assert page.locator("#history tbody tr[data-id]").count() == 1
    with page.expect_download() as download_info:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    staff_rows = [row for row in rows if row["author"] == "staff"]
    assert [row["text"] for row in staff_rows] == ["Hi Ada, Grace here from support."]
    assert {row["conversation_id"] for row in rows} == {str(conversation.pk)}
    with page.expect_download() as download_info:
        page.click("#export-jsonl")
    [line] = Path(download_info.value.path()).read_text().splitlines()
    turns = json.loads(line)["messages"]
    assert {"role": "assistant", "content": "Hi Ada, Grace here from support."} in turns
    assert turns[0] == {"role": "user", "content": "Hi there"}

    # The dashboard draws its charts (SVG, no library from the network).
    page.goto("/console/dashboard/")
    bars = """(chart) => [...document.querySelectorAll(`#${chart} svg rect`)]
        .filter((rect) => rect.querySelector("title") && +rect.getAttribute("height") > 0)
        .map((rect) => rect.querySelector("title").textContent)"""
    page.wait_for_selector("#chart-messages svg")
    # Messages received per day: the bot's bar for today counts the user's 4 messages (not
    # the 3 AI answers and the staff reply), as the table's "Received" does.
    assert page.evaluate(bars, "chart-messages")[-1].endswith(": 4")
    assert page.locator("#dashboard-table tbody tr td").nth(1).inner_text() == "4"
    latency = page.evaluate(bars, "chart-latency")
    assert any(title.startswith("model p50") for title in latency)
    assert any(title.startswith("overhead p95") for title in latency)
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT.replace(".png", "-dashboard.png"), full_page=True)
