"""Telegram setup: webhook registration with commands, the admin, per-chat pacing."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.bots.choices import PairingStatus
from apps.bots.models import PairingRequest
from apps.bots.platforms.telegram.pacing import ChatPacer
from apps.core.aio import process_loop


@pytest.mark.django_db
def test_set_webhook_registers_url_secret_updates_and_commands(telegram_bot, fake_telegram):
    call_command("telegram_set_webhook", telegram_bot.name, url="https://bots.example.com/hook")

    assert fake_telegram.webhook["url"] == "https://bots.example.com/hook"
    assert fake_telegram.webhook["secret_token"] == telegram_bot.config["webhook_secret"]
    assert fake_telegram.webhook["allowed_updates"] == [
        "message",
        "edited_message",
        "callback_query",
    ]
    assert [c["command"] for c in fake_telegram.commands] == ["start", "help", "reset", "model"]
    telegram_bot.refresh_from_db()
    assert telegram_bot.platform_username == "assistant_test_bot"


@pytest.mark.django_db
def test_bot_admin_shows_the_chat_connection_and_access_settings(client, staff_user, telegram_bot):
    client.force_login(staff_user)

    page = client.get(f"/admin/bots/bot/{telegram_bot.pk}/change/").content.decode()

    for field in (
        "connection_mode",
        "group_trigger",
        "group_keyword",
        "edited_messages",
        "while_answering",
        "access_policy",
        "allowed_user_ids",
        "daily_token_budget",
        "user_daily_token_budget",
    ):
        assert f'name="{field}"' in page, field
    assert "Connector status" in page
    assert 'name="connector_status"' not in page  # read-only


@pytest.mark.django_db
def test_pairing_reject_action_records_the_decision(client, staff_user, telegram_bot):
    request = PairingRequest.objects.create(
        bot=telegram_bot, platform_user_id="77", display_name="Eve", code="ABCD2345"
    )
    client.force_login(staff_user)

    listing = client.get("/admin/bots/pairingrequest/")
    assert "ABCD2345" in listing.content.decode()
    client.post(
        "/admin/bots/pairingrequest/",
        {"action": "reject_requests", "_selected_action": [request.pk]},
    )

    request.refresh_from_db()
    assert request.status == PairingStatus.REJECTED
    assert request.decided_by == staff_user


@pytest.mark.django_db
def test_pacer_gives_one_chat_one_slot_per_interval_and_honours_429(telegram_bot):
    private = ChatPacer(telegram_bot, "4242")
    other = ChatPacer(telegram_bot, "5151")
    run = process_loop.run  # the pacer is used by coroutines on the process loop

    assert run(private.reserve()) == 0
    assert run(private.reserve()) > 0.5  # the next slot in that chat is about a second later
    assert run(other.reserve()) == 0  # other chats are not held up
    run(other.hold(30))  # Telegram said: retry after 30 s
    assert run(other.reserve(cap=5)) < -25  # busy beyond the cap: nothing reserved
    assert ChatPacer(telegram_bot, "-100777").interval > private.interval  # groups are slower
