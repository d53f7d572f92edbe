"""The management API: token auth, staff only, secrets write-only, audited."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.bots.models import Bot
from apps.providers.models import Provider


@pytest.fixture
def api(staff_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")
    return client


def test_requires_a_staff_token(transactional_db, django_user_model):
    assert APIClient().get("/api/v1/providers/").status_code == 401
    user = django_user_model.objects.create_user("plain", password="x-password-1")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.get("/api/v1/providers/").status_code == 403


def test_provider_profile_bot_lifecycle(api, staff_user, fake_openai, fake_telegram):
    provider = api.post(
        "/api/v1/providers/",
        {
            "name": "DeepSeek",
            "base_url": fake_openai.base_url,
            "api_key": "sk-secret-123456",
        },
        format="json",
    )
    assert provider.status_code == 201, provider.content
    assert "api_key" not in provider.json()
    assert provider.json()["api_key_masked"] == "sk-…3456"
    assert Provider.objects.get().api_key == "sk-secret-123456"

    profile = api.post(
        "/api/v1/profiles/",
        {
            "name": "chat",
            "provider": provider.json()["id"],
            "model": "deepseek-chat",
        },
        format="json",
    )
    assert profile.status_code == 201, profile.content

    bot = api.post(
        "/api/v1/bots/",
        {
            "name": "Support",
            "platform": "telegram",
            "profile": profile.json()["id"],
            "telegram_token": "123:abc",
            "api_base_url": fake_telegram.url,
        },
        format="json",
    )
    assert bot.status_code == 201, bot.content
    body = bot.json()
    assert body["webhook_url"].endswith(f"/api/webhooks/telegram/{body['id']}/")
    assert "telegram_token" not in body and "telegram_webhook_secret" not in body
    assert set(body["secrets_set"]) == {"telegram_token", "telegram_webhook_secret"}
    assert len(Bot.objects.get().config["webhook_secret"]) >= 32
    assert body["platform_username"] == fake_telegram.bot_username  # checked with getMe
    assert fake_openai.model_list_requests[0]["authorization"] == "Bearer sk-secret-123456"

    renamed = api.patch(f"/api/v1/bots/{body['id']}/", {"name": "Helpdesk"}, format="json")
    assert renamed.status_code == 200
    assert Bot.objects.get().config["token"] == "123:abc"  # untouched by a partial update

    in_use = api.delete(f"/api/v1/providers/{provider.json()['id']}/")
    assert in_use.status_code == 409

    actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor"))
    assert actions == [
        ("provider.create", staff_user.pk),
        ("modelprofile.create", staff_user.pk),
        ("bot.create", staff_user.pk),
        ("bot.update", staff_user.pk),
    ]
    update = AuditEvent.objects.get(action="bot.update")
    assert update.changes == {"name": {"from": "Support", "to": "Helpdesk"}}
    created = AuditEvent.objects.get(action="bot.create")
    assert created.changes["telegram_token"]["to"] == "<set>"  # never the secret itself


def test_telegram_bot_needs_a_token(api):
    response = api.post("/api/v1/bots/", {"name": "x", "platform": "telegram"}, format="json")
    assert response.status_code == 400
    assert "telegram_token" in response.json()


def test_schema_and_docs_are_served(api, client, staff_user):
    schema = api.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/bots/" in schema.content
    client.force_login(staff_user)
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()


def test_a_profile_changed_through_the_api_answers_the_next_message(
    api, client, worker, telegram_bot, fake_telegram, fake_openai, profile
):
    # Workers keep bots and profiles in a per-process cache: a change must reach them.
    from tests.conversations.test_engine import delivered_answers
    from tests.telegram_updates import post_update, private_text_update

    post_update(client, telegram_bot, private_text_update("first", user_id=71))
    delivered_answers(1)
    changed = api.patch(
        f"/api/v1/profiles/{profile.pk}/",
        {"model": "bigger-model", "system_prompt": "Answer like a pirate."},
        format="json",
    )
    assert changed.status_code == 200

    post_update(client, telegram_bot, private_text_update("second", user_id=71))
    delivered_answers(2)

    first, second = fake_openai.chat_requests()
    assert first["model"] == profile.model != "bigger-model"
    assert second["model"] == "bigger-model"
    assert second["messages"][0] == {"role": "system", "content": "Answer like a pirate."}


def test_every_bot_setting_of_the_admin_is_settable_through_the_api(api, web_bot):
    settings_ = {
        "connection_mode": "persistent",
        "group_trigger": "keyword",
        "group_keyword": "小助手",
        "edited_messages": "ignore",
        "while_answering": "interrupt",
        "access_policy": "allowlist",
        "allowed_user_ids": ["42", "43"],
        "daily_token_budget": 100000,
        "user_daily_token_budget": 5000,
    }

    response = api.patch(f"/api/v1/bots/{web_bot.pk}/", settings_, format="json")

    assert response.status_code == 200, response.content
    web_bot.refresh_from_db()
    assert {name: getattr(web_bot, name) for name in settings_} == settings_
    assert {name: response.json()[name] for name in settings_} == settings_
    schema = api.get("/api/schema/").content.decode()
    assert all(name in schema for name in settings_)


@pytest.mark.parametrize(
    "path", ["/api/v1/bots/{bot}/", "/api/v1/providers/{provider}/", "/api/v1/profiles/{profile}/"]
)
def test_an_unknown_field_is_400_and_changes_nothing(api, web_bot, path):
    profile = web_bot.profile
    url = path.format(bot=web_bot.pk, provider=profile.provider_id, profile=profile.pk)

    response = api.patch(url, {"name": "changed", "grup_trigger": "all"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"grup_trigger": ["Unknown field."]}
    web_bot.refresh_from_db()
    profile.refresh_from_db()
    assert "changed" not in (web_bot.name, profile.name, profile.provider.name)


def test_provider_extra_headers_are_encrypted_masked_and_still_sent(
    api, client, worker, staff_user, telegram_bot, fake_telegram, fake_openai
):
    from django.db import connection

    from apps.audit.models import AuditEvent
    from tests.conversations.test_engine import delivered_answers
    from tests.telegram_updates import post_update, private_text_update

    secret = "Bearer sk-very-secret-123456"
    provider = telegram_bot.profile.provider
    response = api.patch(
        f"/api/v1/providers/{provider.pk}/",
        {"extra_headers": {"Authorization-Extra": secret, "X-Org": "acme"}},
        format="json",
    )

    assert response.status_code == 200
    assert "extra_headers" not in response.json() and secret not in response.content.decode()
    assert response.json()["extra_headers_masked"] == {
        "Authorization-Extra": "Bea…3456",
        "X-Org": "••••",
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT extra_headers FROM providers_provider WHERE id = %s", [provider.pk])
        [stored] = cursor.fetchone()
    assert stored.startswith("fernet:") and "sk-very-secret" not in stored
    for event in AuditEvent.objects.all():
        assert "sk-very-secret" not in str(event.changes)
    client.force_login(staff_user)
    page = client.get(f"/admin/providers/provider/{provider.pk}/change/").content.decode()
    assert "sk-very-secret" not in page and "Bea…3456" in page

    post_update(client, telegram_bot, private_text_update("hi", user_id=81))
    delivered_answers(1)
    assert fake_openai.request_headers[-1]["authorization-extra"] == secret


def test_a_token_telegram_refuses_is_400_with_the_reason(api, fake_telegram):
    response = api.post(
        "/api/v1/bots/",
        {
            "name": "x",
            "platform": "telegram",
            "telegram_token": "not-a-token",
            "api_base_url": fake_telegram.url,
        },
        format="json",
    )

    assert response.status_code == 400
    [error] = response.json()["telegram_token"]
    assert error.startswith("Telegram refused this token. Copy it again from @BotFather")
    assert set(response.json()) == {"telegram_token"}  # no save_anyway: a refusal is final
    assert not Bot.objects.exists()


def test_an_unreachable_platform_is_400_unless_saved_anyway(api, transactional_db):
    from tests.bots.test_admin_bots import closed_port_url

    bot = {
        "name": "x",
        "platform": "telegram",
        "telegram_token": "123456:TEST-token",
        "api_base_url": closed_port_url(),
    }

    refused = api.post("/api/v1/bots/", bot, format="json")

    assert refused.status_code == 400
    assert set(refused.json()) == {"api_base_url", "save_anyway"}
    assert "could not be reached" in refused.json()["api_base_url"][0]
    assert not Bot.objects.exists()

    saved = api.post("/api/v1/bots/", {**bot, "save_anyway": True}, format="json")

    assert saved.status_code == 201, saved.content
    assert "save_anyway" not in saved.json()
    assert Bot.objects.get().config["token"] == "123456:TEST-token"
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for name in ("Bot", "Provider"):
        field = schema["components"]["schemas"][name]["properties"]["save_anyway"]
        assert field["writeOnly"] is True and field["type"] == "boolean"


def test_a_changed_token_is_checked_and_a_refused_one_changes_nothing(
    api, telegram_bot, fake_telegram
):
    fake_telegram.valid_tokens = {"123456:TEST-token"}

    response = api.patch(
        f"/api/v1/bots/{telegram_bot.pk}/", {"telegram_token": "123456:other"}, format="json"
    )

    assert response.status_code == 400
    assert "Telegram refused this token" in response.json()["telegram_token"][0]
    telegram_bot.refresh_from_db()
    assert telegram_bot.config["token"] == "123456:TEST-token"
    renamed = api.patch(f"/api/v1/bots/{telegram_bot.pk}/", {"name": "new"}, format="json")
    assert renamed.status_code == 200
    assert [call.token for call in fake_telegram.calls] == ["123456:other"]  # no check needed


def test_a_provider_key_the_provider_refuses_is_400(api, fake_openai):
    fake_openai.api_keys = {"sk-right"}

    response = api.post(
        "/api/v1/providers/",
        {"name": "p", "base_url": fake_openai.base_url, "api_key": "sk-wrong"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "api_key": ["The provider refused the API key (HTTP 401): Incorrect API key provided."]
    }
    assert not Provider.objects.exists()
