"""The dashboard in a real browser: its messages chart and its table tell the same story."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Conversation, Message
from tests.browser.conftest import admin_login
from tests.factories import make_web_bot

pytestmark = pytest.mark.browser


def _question_and_answer(conversation, when) -> None:
    question = Message.objects.create(
        conversation=conversation,
        bot=conversation.bot,
        direction=Direction.IN,
        author=Author.USER,
        text="q",
        status=MessageStatus.ANSWERED,
        received_at=when,
    )
    Message.objects.create(
        conversation=conversation,
        bot=conversation.bot,
        direction=Direction.OUT,
        author=Author.ASSISTANT,
        text="a",
        status=MessageStatus.DELIVERED,
        reply_to=question,
        received_at=when,
    )


def test_messages_chart_has_whole_number_ticks_and_adds_up_to_the_table(
    staff_user, web_bot, new_page
):
    other_bot = make_web_bot(profile=None, name="Second bot")
    now = timezone.now()
    # 5 questions (and 5 answers) on the first bot over three days, 3 on the other: the
    # axis tops out at a count where quarters would be fractions (5 -> 1.25, 2.5, …).
    for days_ago in (0, 0, 1, 3, 3):
        chat = Conversation.objects.get_or_create(bot=web_bot, chat_id="v", chat_type="private")[0]
        _question_and_answer(chat, now - timedelta(days=days_ago))
    for days_ago in (0, 2, 2):
        chat = Conversation.objects.get_or_create(bot=other_bot, chat_id="w", chat_type="private")[
            0
        ]
        _question_and_answer(chat, now - timedelta(days=days_ago))

    page = new_page()
    admin_login(page, staff_user.username, "staff-password-1", next_path="/console/dashboard/")
    page.wait_for_selector("#chart-messages svg rect", state="attached")

    ticks = page.locator("#chart-messages text.chart__tick[text-anchor='end']").all_text_contents()
    assert ticks and all(tick.isdigit() for tick in ticks), ticks
    bars: dict[str, int] = {}
    for title in page.locator("#chart-messages rect > title").all_text_contents():
        name, _, value = title.partition(" · ")
        bars[name] = bars.get(name, 0) + int(value.rsplit(": ", 1)[1])
    table = {
        row.locator("td").nth(0).inner_text(): int(row.locator("td").nth(1).inner_text())
        for row in page.locator("#dashboard-table tbody tr").all()
    }
    assert bars == table == {web_bot.name: 5, "Second bot": 3}
