"""WeCom (企业微信) end to end: the published examples through the webhook, stored, answered.

Every example comes from WeCom's documentation (tests/wecom_events.py names the pages).
"""

from __future__ import annotations

import pytest

from apps.bots.models import Bot, UnprocessedEvent
from apps.bots.platforms.wecom import crypto
from apps.conversations.choices import Direction, MessageStatus
from apps.conversations.models import Message
from apps.core.redis import get_redis
from tests import wecom_events
from tests.fakes.server import wait_for
from tests.wecom_events import (
    FILE,
    IMAGE,
    LOCATION,
    SAMPLE_AES_KEY,
    SAMPLE_CORP_ID,
    SAMPLE_MESSAGE_BODY,
    SAMPLE_MESSAGE_ENCRYPT,
    SAMPLE_MESSAGE_QUERY,
    SAMPLE_TOKEN,
    SAMPLE_URL_CHECK,
    SAMPLE_URL_CHECK_PLAINTEXT,
    TEXT,
    VIDEO,
    VOICE,
    encrypted_body,
    post_callback,
    post_message,
    signed_query,
)

fake_wecom = wecom_events.fake_wecom
wecom_bot = wecom_events.wecom_bot
sample_wecom_bot = wecom_events.sample_wecom_bot


@pytest.fixture
def api(staff_user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(staff_user)
    return client


def inbound() -> list[Message]:
    return list(Message.objects.filter(direction=Direction.IN).order_by("id"))


def test_the_official_sample_vectors_sign_and_decrypt_as_published():
    assert (
        crypto.signature(
            token=SAMPLE_TOKEN,
            timestamp=SAMPLE_URL_CHECK["timestamp"],
            nonce=SAMPLE_URL_CHECK["nonce"],
            encrypted=SAMPLE_URL_CHECK["echostr"],
        )
        == SAMPLE_URL_CHECK["msg_signature"]
    )
    assert (
        crypto.signature(
            token=SAMPLE_TOKEN,
            encrypted=SAMPLE_MESSAGE_ENCRYPT,
            **{key: SAMPLE_MESSAGE_QUERY[key] for key in ("timestamp", "nonce")},
        )
        == SAMPLE_MESSAGE_QUERY["msg_signature"]
    )
    plain = crypto.decrypt(
        encoding_aes_key=SAMPLE_AES_KEY,
        encrypted=SAMPLE_URL_CHECK["echostr"],
        receive_id=SAMPLE_CORP_ID,
    )
    assert plain.decode() == SAMPLE_URL_CHECK_PLAINTEXT
    # What we encrypt, WeCom's own scheme decrypts (the padding is to 32 bytes).
    again = crypto.encrypt(encoding_aes_key=SAMPLE_AES_KEY, message=b"hi", receive_id="corp")
    assert (
        crypto.decrypt(encoding_aes_key=SAMPLE_AES_KEY, encrypted=again, receive_id="corp") == b"hi"
    )


def test_the_url_check_answers_the_decrypted_echostr(client, sample_wecom_bot):
    echostr = SAMPLE_URL_CHECK["echostr"]
    query = {**signed_query(token=SAMPLE_TOKEN, encrypted=echostr), "echostr": echostr}

    response = client.get(f"/api/webhooks/wecom/{sample_wecom_bot.pk}/", query)

    assert response.status_code == 200
    assert response.content.decode() == SAMPLE_URL_CHECK_PLAINTEXT  # as is, no quotes
    # The published request itself is years old: refused as a replay.
    stale = client.get(f"/api/webhooks/wecom/{sample_wecom_bot.pk}/", SAMPLE_URL_CHECK)
    assert stale.status_code == 403
    forged = client.get(
        f"/api/webhooks/wecom/{sample_wecom_bot.pk}/", {**query, "msg_signature": "0" * 40}
    )
    assert forged.status_code == 403


def test_the_official_sample_message_is_stored_and_answered(
    client, worker, sample_wecom_bot, fake_wecom, fake_openai
):
    query = signed_query(token=SAMPLE_TOKEN, encrypted=SAMPLE_MESSAGE_ENCRYPT)

    response = post_callback(client, sample_wecom_bot, SAMPLE_MESSAGE_BODY, query)

    assert response.status_code == 200 and response.content == b""
    [message] = inbound()
    assert (message.text, message.external_id) == ("hello", "4561255354251345929")
    assert message.conversation.chat_id == "mycreate"
    wait_for(lambda: fake_wecom.sent)
    assert fake_wecom.sent[0]["touser"] == "mycreate"
    assert fake_wecom.texts() == ["Hello from the fake model."]


def test_published_messages_are_stored_as_what_they_carry(client, wecom_bot, fake_wecom):
    for example in (TEXT, IMAGE, VOICE, VIDEO, LOCATION, FILE):
        assert post_message(client, wecom_bot, example).status_code == 200

    messages = inbound()
    # TEXT, IMAGE, VOICE and VIDEO share the published MsgId: WeCom's id dedups them.
    assert [m.external_id for m in messages] == ["1234567890123456", "1234567890123457"]
    text, file = messages
    assert (text.text, text.conversation.chat_id) == ("this is a test", "fromUser")
    assert file.attachments.get().file_name == "report.pdf"
    assert file.attachments.get().platform_file_id == "file_media_id"


@pytest.mark.parametrize(
    ("example", "text", "kind"),
    [
        (IMAGE, "", "image"),
        (VOICE, "", "audio"),
        (VIDEO, "[video]", None),  # kept and answered with a "cannot read this" notice
        (LOCATION, "📍 位置信息 (23.134, 113.358)", None),
    ],
    ids=["image", "voice", "video", "location"],
)
def test_each_published_kind_is_read(client, wecom_bot, example, text, kind):
    assert post_message(client, wecom_bot, example).status_code == 200

    [message] = inbound()
    assert message.text == text
    attachments = list(message.attachments.values_list("kind", "platform_file_id"))
    assert attachments == ([(kind, "media_id")] if kind else [])


def test_an_answer_is_sent_with_a_cached_access_token(
    client, worker, wecom_bot, fake_wecom, fake_openai
):
    post_message(client, wecom_bot, TEXT)
    wait_for(lambda: fake_wecom.sent)
    post_message(client, wecom_bot, TEXT.replace("1234567890123456", "1234567890123458"))
    wait_for(lambda: len(fake_wecom.sent) == 2)

    assert fake_wecom.texts() == ["Hello from the fake model."] * 2
    assert fake_wecom.sent[0]["touser"] == "fromUser"
    assert fake_wecom.sent[0]["agentid"] == 1000002
    assert len(fake_wecom.calls_of("token")) == 1  # the second answer used the cached one
    ttl = get_redis().ttl(f"assistant:wecom:token:{wecom_bot.pk}")
    assert 0 < ttl <= 7200 - 300  # WeCom's expires_in, less the margin


def test_an_expired_token_is_renewed_and_the_answer_still_goes_out(
    client, worker, wecom_bot, fake_wecom, fake_openai
):
    post_message(client, wecom_bot, TEXT)
    wait_for(lambda: fake_wecom.sent)
    fake_wecom.expire_tokens()

    post_message(client, wecom_bot, TEXT.replace("1234567890123456", "1234567890123459"))

    delivered = Message.objects.filter(direction=Direction.OUT, status=MessageStatus.DELIVERED)
    wait_for(lambda: delivered.count() == 2)
    assert len(fake_wecom.calls_of("token")) == 2  # the refused token was renewed once
    assert fake_wecom.texts() == ["Hello from the fake model."] * 2


def test_inauthentic_or_unreadable_callbacks_store_nothing(client, wecom_bot):
    body, encrypted = encrypted_body(wecom_bot, TEXT)
    good = signed_query(token=SAMPLE_TOKEN, encrypted=encrypted)

    assert (
        post_callback(client, wecom_bot, body, {**good, "msg_signature": "f" * 40}).status_code
        == 403
    )
    assert (
        post_callback(client, wecom_bot, body, {**good, "timestamp": "1409659813"}).status_code
        == 403
    )
    doctype = b'<!DOCTYPE xml [<!ENTITY e "x">]><xml><Encrypt>&e;</Encrypt></xml>'
    assert post_callback(client, wecom_bot, doctype, good).status_code == 400
    # Encrypted for another corp ID, signed correctly: not ours.
    other = crypto.encrypt(encoding_aes_key=SAMPLE_AES_KEY, message=TEXT.encode(), receive_id="x")
    other_body = f"<xml><Encrypt><![CDATA[{other}]]></Encrypt></xml>".encode()
    other_query = signed_query(token=SAMPLE_TOKEN, encrypted=other)
    assert post_callback(client, wecom_bot, other_body, other_query).status_code == 403
    assert not Message.objects.exists() and not UnprocessedEvent.objects.exists()


def test_a_wecom_bot_is_configured_through_the_api_from_its_schema(api, fake_wecom, profile):
    bot = {
        "name": "WeCom helpdesk",
        "platform": "wecom",
        "profile": profile.pk,
        "api_base_url": fake_wecom.url,
        "wecom_corp_id": fake_wecom.corp_id,
        "wecom_agent_id": "1000002",
        "wecom_secret": "wrong",
        "wecom_token": SAMPLE_TOKEN,
        "wecom_encoding_aes_key": SAMPLE_AES_KEY,
    }

    refused = api.post("/api/v1/bots/", bot, format="json")
    assert refused.status_code == 400
    assert "WeCom refused the corp ID or app secret" in refused.json()["wecom_secret"][0]
    unknown = api.post("/api/v1/bots/", {**bot, "wecom_colour": "red"}, format="json")
    assert unknown.status_code == 400 and "wecom_colour" in unknown.json()
    foreign = api.post("/api/v1/bots/", {**bot, "telegram_token": "1:x"}, format="json")
    assert foreign.status_code == 400 and "telegram_token" in foreign.json()

    created = api.post("/api/v1/bots/", {**bot, "wecom_secret": fake_wecom.secret}, format="json")

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["webhook_url"].endswith(f"/api/webhooks/wecom/{body['id']}/")
    assert body["wecom_corp_id"] == fake_wecom.corp_id and "wecom_secret" not in body
    assert set(body["secrets_set"]) == {"wecom_secret", "wecom_token", "wecom_encoding_aes_key"}
    assert Bot.objects.get().config["secret"] == fake_wecom.secret


def test_the_admin_form_comes_from_the_schema_and_never_shows_a_secret(
    client, staff_user, fake_wecom, profile
):
    from tests.bots.test_admin_bots import bot_form, errors

    client.force_login(staff_user)
    add_page = client.get("/admin/bots/bot/add/").content.decode()
    assert 'name="wecom_encoding_aes_key"' in add_page and "platform-wecom" in add_page
    form = bot_form(
        platform="wecom",
        api_base_url=fake_wecom.url,
        wecom_corp_id=fake_wecom.corp_id,
        wecom_agent_id="1000002",
        wecom_secret=fake_wecom.secret,
        wecom_token=SAMPLE_TOKEN,
        wecom_encoding_aes_key="",
    )

    missing = client.post("/admin/bots/bot/add/", form).content.decode()
    assert "Needed for this platform: WeCom EncodingAESKey." in errors(missing)
    response = client.post(
        "/admin/bots/bot/add/", {**form, "wecom_encoding_aes_key": SAMPLE_AES_KEY}
    )

    assert response.status_code == 302, errors(response.content.decode())
    bot = Bot.objects.get()
    assert bot.config["encoding_aes_key"] == SAMPLE_AES_KEY
    change_page = client.get(f"/admin/bots/bot/{bot.pk}/change/").content.decode()
    assert 'name="wecom_token"' in change_page and 'name="telegram_token"' not in change_page
    assert f'value="{fake_wecom.corp_id}"' in change_page  # not a secret: shown
    assert SAMPLE_AES_KEY not in change_page and fake_wecom.secret not in change_page


def test_wecom_has_no_persistent_mode_and_says_so(client, staff_user, wecom_bot):
    # WeCom only calls the webhook URL: persistent mode would receive nothing, in silence.
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")

    response = api.patch(
        f"/api/v1/bots/{wecom_bot.pk}/", {"connection_mode": "persistent"}, format="json"
    )

    assert response.status_code == 400
    assert "has no persistent connection" in str(response.json()["connection_mode"])
    wecom_bot.refresh_from_db()
    assert wecom_bot.connection_mode == "webhook"
