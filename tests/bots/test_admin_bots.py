"""The bots admin: forms cut to the bot's platform, and credentials checked when saved."""

from __future__ import annotations

import re
import socket

import pytest

from apps.audit.models import AuditEvent
from apps.bots.models import Bot
from tests.factories import make_telegram_bot, make_web_bot
from tests.feishu_events import fake_feishu  # noqa: F401 - a fixture

ADD_URL = "/admin/bots/bot/add/"


def closed_port_url() -> str:
    """An address on this machine where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def bot_form(**fields) -> dict[str, str]:
    """What the add page posts: every field it shows, with the defaults it shows."""
    return {
        "name": "Support",
        "platform": "telegram",
        "enabled": "on",
        "profile": "",
        "connection_mode": "webhook",
        "api_base_url": "",
        "telegram_token": "",
        "feishu_app_id": "",
        "feishu_app_secret": "",
        "feishu_verification_token": "",
        "feishu_encrypt_key": "",
        "group_trigger": "mention",
        "group_keyword": "",
        "edited_messages": "ignore",
        "reply_language": "auto",
        "while_answering": "finish",
        "access_policy": "open",
        "allowed_user_ids": "[]",
        "daily_token_budget": "",
        "user_daily_token_budget": "",
        "save_anyway": "False",
        **fields,
    }


def errors(page: str) -> str:
    """The text of the page's error lists."""
    return " ".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', page, re.S))


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_a_telegram_bot_is_saved_once_telegram_knows_its_token(admin_client, fake_telegram):
    response = admin_client.post(
        ADD_URL,
        bot_form(api_base_url=fake_telegram.url, telegram_token="123456:TEST-token"),
    )

    assert response.status_code == 302, errors(response.content.decode())
    bot = Bot.objects.get()
    assert [call.method for call in fake_telegram.calls] == ["getMe"]
    assert fake_telegram.calls[0].token == "123456:TEST-token"
    assert bot.platform_username == fake_telegram.bot_username  # learnt from getMe
    assert AuditEvent.objects.filter(action="bot.create").count() == 1


@pytest.mark.parametrize("token", ["not-a-token", "123456:revoked-token"])
def test_a_token_telegram_refuses_is_a_form_error_and_nothing_is_saved(
    admin_client, fake_telegram, token
):
    fake_telegram.valid_tokens = {"123456:TEST-token"}

    page = admin_client.post(
        ADD_URL, bot_form(api_base_url=fake_telegram.url, telegram_token=token)
    ).content.decode()

    assert "Telegram refused this token. Copy it again from @BotFather" in errors(page)
    assert token not in page  # neither echoed in the form nor quoted in the error
    # A refusal is final: no "Save anyway" box, only the hidden field.
    assert 'type="hidden" name="save_anyway"' in page
    assert 'type="checkbox" name="save_anyway"' not in page
    assert not Bot.objects.exists()
    assert [call.method for call in fake_telegram.calls] == ["getMe"]


def test_an_unreachable_platform_offers_save_anyway(admin_client, transactional_db):
    unreachable = closed_port_url()
    form = bot_form(api_base_url=unreachable, telegram_token="123456:TEST-token")

    page = admin_client.post(ADD_URL, form).content.decode()

    assert "Telegram could not be reached to check the credentials" in errors(page)
    assert "123456:TEST-token" not in page
    assert 'type="checkbox" name="save_anyway"' in page
    assert not Bot.objects.exists()

    response = admin_client.post(ADD_URL, {**form, "save_anyway": "on"})

    assert response.status_code == 302
    bot = Bot.objects.get()
    assert (bot.config["token"], bot.api_base_url) == ("123456:TEST-token", unreachable)
    assert bot.platform_username == ""  # never learnt


def test_a_feishu_bot_needs_an_app_secret_feishu_accepts(admin_client, fake_feishu):  # noqa: F811
    form = bot_form(
        platform="feishu",
        api_base_url=fake_feishu.url,
        feishu_app_id=fake_feishu.app_id,
        feishu_app_secret="wrong-secret",
        feishu_verification_token="verify-me",
    )

    page = admin_client.post(ADD_URL, form).content.decode()

    assert "Feishu / Lark refused the app ID or secret" in errors(page)
    assert "app secret invalid" in errors(page) and "wrong-secret" not in page
    assert not Bot.objects.exists()

    response = admin_client.post(ADD_URL, {**form, "feishu_app_secret": fake_feishu.app_secret})

    assert response.status_code == 302, errors(response.content.decode())
    bot = Bot.objects.get()
    assert bot.config == {
        "app_id": fake_feishu.app_id,
        "app_secret": fake_feishu.app_secret,
        "verification_token": "verify-me",
    }
    tokens = fake_feishu.calls_of("token")
    assert [call.body["app_secret"] for call in tokens] == ["wrong-secret", fake_feishu.app_secret]


def test_the_add_page_drops_other_platforms_fields(admin_client, transactional_db):
    # The add page shows every platform's fieldsets until a platform is chosen (a script
    # hides the others): what was typed into a hidden one is not kept.
    response = admin_client.post(
        ADD_URL, bot_form(platform="web", telegram_token="123456:TEST-token")
    )

    assert response.status_code == 302
    bot = Bot.objects.get()
    assert (bot.platform, bot.config) == ("web", {})


def test_a_change_page_shows_only_its_platform_fields(admin_client, fake_telegram, profile):
    web_bot = make_web_bot(profile=profile)
    telegram_bot = make_telegram_bot(profile=profile, api_base_url=fake_telegram.url)

    web_page = admin_client.get(f"/admin/bots/bot/{web_bot.pk}/change/").content.decode()
    telegram_page = admin_client.get(f"/admin/bots/bot/{telegram_bot.pk}/change/").content.decode()

    for name in ("telegram_token", "feishu_app_id", "connection_mode", "group_trigger"):
        assert f'name="{name}"' not in web_page
        assert f'name="{name}"' in telegram_page or name == "feishu_app_id"
    assert 'name="feishu_app_id"' not in telegram_page
    assert f'href="/chat/{web_bot.pk}/"' in web_page
    assert 'name="reply_language"' in web_page and 'name="daily_token_budget"' in web_page
    # The platform cannot change, so it is shown, not offered.
    assert 'name="platform"' not in web_page and 'name="platform"' not in telegram_page


def test_a_change_that_keeps_the_credentials_does_not_call_the_platform(
    admin_client, fake_telegram, profile
):
    bot = make_telegram_bot(profile=profile, api_base_url=fake_telegram.url)
    url = f"/admin/bots/bot/{bot.pk}/change/"
    form = bot_form(
        name="Renamed",
        profile=str(profile.pk),
        api_base_url=fake_telegram.url,
        telegram_webhook_secret="",
        poll_offset="",
    )
    del form["platform"]

    fake_telegram.stop()  # Telegram is down: a rename must still go through
    response = admin_client.post(url, form)

    assert response.status_code == 302, errors(response.content.decode())
    bot.refresh_from_db()
    assert bot.name == "Renamed" and bot.config["token"] == "123456:TEST-token"
    assert fake_telegram.calls == []
