"""The admin's home page: bots with their connection, providers' health, today's traffic."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.bots.models import Bot
from apps.conversations.models import Conversation, Message
from apps.core.health import worker_heartbeat_beat, worker_heartbeat_clear
from apps.providers.services import provider_failure_record, provider_success_record
from tests.factories import make_profile, make_provider, make_telegram_bot, make_web_bot


def row(page: str, attribute: str, key) -> str:
    """The HTML of one table row of the overview, found by its data attribute."""
    match = re.search(rf'<tr {attribute}="{key}">(.*?)</tr>', page, re.S)
    assert match, f"no row {attribute}={key}"
    return re.sub(r"\s+", " ", match.group(1))


def card(page: str, name: str) -> list[str]:
    match = re.search(rf'id="card-{name}">(.*?)</div></div>', page, re.S)
    assert match, name
    return re.sub(r"<[^>]+>", " ", match.group(1)).split()


def message(conversation: Conversation, direction: str, status: str, **fields) -> Message:
    return Message.objects.create(
        conversation=conversation,
        bot=conversation.bot,
        direction=direction,
        author="user" if direction == "in" else "assistant",
        status=status,
        **fields,
    )


@pytest.fixture
def admin_page(client, staff_user):
    client.force_login(staff_user)

    def get() -> str:
        response = client.get("/admin/")
        assert response.status_code == 200
        return response.content.decode()

    return get


@pytest.fixture
def _no_workers():
    worker_heartbeat_clear(name="home-test-worker")
    yield
    worker_heartbeat_clear(name="home-test-worker")


def test_bots_show_their_connection_and_today_s_messages(admin_page, transactional_db):
    provider = make_provider(base_url="http://127.0.0.1:9/v1", name="Main")
    profile = make_profile(provider=provider, name="chat")
    web = make_web_bot(profile=profile, name="Site chat")
    hooked = make_telegram_bot(profile=None, api_base_url="http://127.0.0.1:9", name="Hooked")
    polled = make_telegram_bot(
        profile=profile,
        api_base_url="http://127.0.0.1:9",
        name="Polled",
        connection_mode="persistent",
    )
    lost = make_telegram_bot(
        profile=profile,
        api_base_url="http://127.0.0.1:9",
        name="Lost",
        connection_mode="persistent",
    )
    now = timezone.now()
    Bot.objects.filter(pk=polled.pk).update(connector_heartbeat_at=now - timedelta(seconds=30))
    Bot.objects.filter(pk=lost.pk).update(
        connector_heartbeat_at=now - timedelta(hours=2), connector_status="getUpdates: 409"
    )
    chat = Conversation.objects.create(bot=web, chat_id="visitor-1", chat_type="private")
    asked = message(chat, "in", "answered", external_id="1")
    message(chat, "out", "delivered", reply_to=asked)
    message(chat, "in", "failed", external_id="2")
    message(chat, "in", "answered", external_id="old", received_at=now - timedelta(days=2))

    page = admin_page()

    assert card(page, "bots")[:2] == ["Bots", "4"]
    assert card(page, "inbound") == ["Messages", "in", "today", "2", "Live", "conversations"]
    assert card(page, "answers")[2] == "1" and card(page, "failed")[2] == "1"

    web_row = row(page, "data-bot", web.pk)
    assert f'href="/chat/{web.pk}/"' in web_row and "Web chat" in web_row
    numbers = re.findall(r'<td class="num">(\d+)</td>', web_row)
    assert numbers == ["2", "1", "1"]
    assert "Webhook" in row(page, "data-bot", hooked.pk)
    assert "None: answers nothing" in row(page, "data-bot", hooked.pk)
    assert "Connected" in row(page, "data-bot", polled.pk)
    # 30 s when the page was made, a little more when the test was slow to get there.
    assert re.search(r"heartbeat 3\d s ago", row(page, "data-bot", polled.pk))
    lost_row = row(page, "data-bot", lost.pk)
    assert "No connector running" in lost_row and "getUpdates: 409" in lost_row
    # Django's app list stays below.
    assert 'class="app-bots module' in page


def test_providers_show_their_health(admin_page, transactional_db, _no_workers):
    from apps.core.redis import get_redis

    healthy = make_provider(base_url="http://127.0.0.1:9/v1", name="Healthy")
    failing = make_provider(
        base_url="http://127.0.0.1:9/v1", name="Failing", cooldown_after_failures=5
    )
    cooling = make_provider(
        base_url="http://127.0.0.1:9/v1", name="Cooling", cooldown_after_failures=1
    )
    for provider in (healthy, failing, cooling):
        get_redis().delete(f"assistant:provider:{provider.pk}:health")
    provider_success_record(provider=healthy)
    provider_failure_record(provider=failing, error="HTTP 503: overloaded")
    provider_failure_record(provider=failing, error="HTTP 503: still overloaded")
    provider_failure_record(provider=cooling, error="connection refused")
    # The session's Celery worker may be beating too (when browser tests ran first).
    workers_before = int(card(admin_page(), "workers")[1])
    worker_heartbeat_beat(name="home-test-worker", queues=["llm", "default"])

    page = admin_page()

    assert ">OK<" in row(page, "data-provider", healthy.pk)
    failing_row = row(page, "data-provider", failing.pk)
    assert "2 failures in a row" in failing_row and "HTTP 503: still overloaded" in failing_row
    assert re.search(r"Cooling down, \d+ s left", row(page, "data-provider", cooling.pk))
    assert int(card(page, "workers")[1]) == workers_before + 1


def test_the_home_page_follows_the_language(client, staff_user, transactional_db):
    client.force_login(staff_user)

    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()

    assert "今日收到消息" in page and "还没有机器人。" in page
