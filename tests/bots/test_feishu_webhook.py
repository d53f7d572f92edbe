"""The Feishu path end to end: webhook -> ingest -> real Celery worker -> model -> reply card."""

import json
import time

import pytest
from django.db import OperationalError
from lark_oapi.core.utils import AESCipher

from apps.bots.models import UnprocessedEvent
from apps.bots.platforms import adapter_for
from apps.bots.platforms.base import InboundAttachment
from apps.conversations.choices import Direction, MessageStatus
from apps.conversations.models import Feedback, Message, MessageAttachment
from apps.core.redis import get_redis
from tests import feishu_events
from tests.fakes.server import wait_for
from tests.feishu_events import (
    BOT_OPEN_ID,
    ENCRYPT_KEY,
    VERIFICATION_TOKEN,
    card_action_event,
    encrypt,
    mention,
    message_event,
    post_event,
    signed_headers,
    url_verification,
)

fake_feishu = feishu_events.fake_feishu
feishu_bot = feishu_events.feishu_bot
plain_feishu_bot = feishu_events.plain_feishu_bot


def delivered_answers():
    # The worker writes while we poll; SQLite's shared in-memory test database may
    # answer "table is locked" instead of waiting: that only means "not yet".
    try:
        return list(
            Message.objects.filter(
                direction=Direction.OUT, status=MessageStatus.DELIVERED
            ).order_by("id")
        )
    except OperationalError:
        return []


def settled_inbound():
    """The inbound message once its turn has run (answered, failed or skipped)."""
    try:
        return (
            Message.objects.filter(direction=Direction.IN)
            .exclude(status__in=[MessageStatus.RECEIVED, MessageStatus.PROCESSING])
            .first()
        )
    except OperationalError:
        return None


# URL verification and request checks --------------------------------------------------------


@pytest.mark.django_db
def test_plain_url_verification_echoes_the_challenge(client, plain_feishu_bot):
    response = post_event(
        client, plain_feishu_bot, url_verification(token=VERIFICATION_TOKEN, challenge="abc-123")
    )

    assert response.status_code == 200
    assert response.json() == {"challenge": "abc-123"}
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_encrypted_url_verification_is_decrypted_and_echoed_in_plaintext(client, feishu_bot):
    payload = url_verification(token=VERIFICATION_TOKEN, challenge="enc-challenge")
    # Our test cipher is the documented scheme: lark-oapi's own AESCipher reads it.
    sealed = encrypt(json.dumps(payload), ENCRYPT_KEY)
    assert json.loads(AESCipher(ENCRYPT_KEY).decrypt_str(sealed)) == payload

    # Feishu does not sign the URL check.
    response = post_event(client, feishu_bot, payload, headers={})

    assert response.status_code == 200
    assert response.json() == {"challenge": "enc-challenge"}


@pytest.mark.django_db
def test_url_verification_with_a_wrong_token_is_403(client, plain_feishu_bot):
    response = post_event(client, plain_feishu_bot, url_verification(token="not-the-token"))

    assert response.status_code == 403
    assert "challenge" not in response.json()


@pytest.mark.django_db
def test_bad_signature_is_403_and_stores_nothing(client, feishu_bot):
    body = json.dumps(
        {"encrypt": encrypt(json.dumps(message_event(token=VERIFICATION_TOKEN)), ENCRYPT_KEY)}
    ).encode()
    headers = signed_headers(body, ENCRYPT_KEY)
    headers["X-Lark-Signature"] = signed_headers(body, "another-key")["X-Lark-Signature"]

    response = post_event(client, feishu_bot, {}, raw=body, headers=headers)

    assert response.status_code == 403
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_missing_signature_is_403(client, feishu_bot):
    response = post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN), headers={})

    assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("age", [-600, 600])
def test_stale_or_future_timestamp_is_403_even_when_correctly_signed(client, feishu_bot, age):
    body = json.dumps(
        {"encrypt": encrypt(json.dumps(message_event(token=VERIFICATION_TOKEN)), ENCRYPT_KEY)}
    ).encode()
    headers = signed_headers(body, ENCRYPT_KEY, timestamp=int(time.time()) - age)

    response = post_event(client, feishu_bot, {}, raw=body, headers=headers)

    assert response.status_code == 403
    assert "timestamp" in response.json()["msg"]
    assert Message.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("bot_fixture", ["feishu_bot", "plain_feishu_bot"])
def test_wrong_verification_token_is_403(client, request, bot_fixture):
    bot = request.getfixturevalue(bot_fixture)

    response = post_event(client, bot, message_event(token="wrong-token"))

    assert response.status_code == 403
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_encrypted_event_for_a_bot_without_encrypt_key_is_rejected(client, plain_feishu_bot):
    response = post_event(
        client, plain_feishu_bot, message_event(token=VERIFICATION_TOKEN), encrypt_key=ENCRYPT_KEY
    )

    assert response.status_code == 403


def _broken_event(**changes):
    event = message_event(token=VERIFICATION_TOKEN)
    for path, value in changes.items():
        target = event
        *parents, last = path.split("__")
        for key in parents:
            target = target[key]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return json.dumps(event).encode()


def _post_signed(client, bot, body: bytes):
    if b"encrypt" not in body and body.startswith(b'{"'):
        body = json.dumps({"encrypt": encrypt(body.decode(), ENCRYPT_KEY)}).encode()
    return post_event(client, bot, {}, raw=body, headers=signed_headers(body, ENCRYPT_KEY))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b"\xff\xfe",
        b'{"encrypt": 5}',
        b'{"encrypt": "bm90IGNpcGhlcnRleHQ="}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_a_body_we_cannot_read_or_decrypt_is_400_never_500(client, feishu_bot, body):
    response = _post_signed(client, feishu_bot, body)

    assert response.status_code == 400
    assert Message.objects.count() == 0 and not UnprocessedEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        _broken_event(header__event_id=None),
        _broken_event(schema="1.0"),
        _broken_event(event="x"),
        _broken_event(event__message__content="{not json"),
        _broken_event(event__message__content='"a string"'),
        _broken_event(event__message__chat_id=None),
        _broken_event(event__message=[1]),
        _broken_event(event__message__message_id="om_" + "x" * 200),
    ],
)
def test_a_signed_event_we_cannot_use_is_kept_and_answered_200(client, feishu_bot, body):
    response = _post_signed(client, feishu_bot, body)

    assert response.status_code == 200
    assert Message.objects.count() == 0
    [kept] = UnprocessedEvent.objects.all()
    assert kept.bot == feishu_bot and kept.reason


@pytest.mark.django_db
def test_unknown_bot_is_404(client, feishu_bot):
    response = client.post(
        "/api/webhooks/feishu/00000000-0000-0000-0000-000000000000/",
        data="{}",
        content_type="application/json",
    )
    assert response.status_code == 404


# Messages answered ----------------------------------------------------------------------------


def test_p2p_text_is_answered_as_a_reply_card_with_the_full_answer(
    client, worker, feishu_bot, fake_feishu, fake_openai
):
    fake_openai.reply = "Paris is the capital of France."
    event = message_event(token=VERIFICATION_TOKEN, text="What is the capital of France?")

    response = post_event(client, feishu_bot, event)

    assert response.status_code == 200
    assert response.json() == {"msg": "success"}
    answer = wait_for(lambda: delivered_answers())[0]
    cards = fake_feishu.cards()
    assert len(cards) == 1
    card = cards[0]
    assert card.msg_type == "interactive"
    assert card.reply_to == event["event"]["message"]["message_id"]
    assert card.text == "Paris is the capital of France."
    assert card.uuid == f"answer-{answer.pk}-0"
    assert card.card["config"]["update_multi"] is True
    assert [b["value"] for b in card.buttons] == [
        {"action": "helpful", "message_id": str(answer.pk)},
        {"action": "not_helpful", "message_id": str(answer.pk)},
        {"action": "regenerate", "message_id": str(answer.pk)},
    ]
    assert answer.platform_message_id == card.message_id
    assert fake_openai.requests[0]["messages"][-1] == {
        "role": "user",
        "content": "What is the capital of France?",
    }
    inbound = Message.objects.get(direction=Direction.IN)
    assert inbound.sender_id == "ou_user_ada"
    assert inbound.external_id == event["header"]["event_id"]
    assert inbound.conversation.chat_type == "private"


def test_duplicate_event_id_is_acknowledged_and_not_answered_twice(
    client, worker, feishu_bot, fake_feishu, fake_openai
):
    event = message_event(token=VERIFICATION_TOKEN, text="hello")
    assert post_event(client, feishu_bot, event).status_code == 200
    wait_for(lambda: delivered_answers())

    again = post_event(client, feishu_bot, event)

    assert again.status_code == 200
    assert Message.objects.filter(direction=Direction.IN).count() == 1
    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="and again"))
    wait_for(lambda: len(delivered_answers()) == 2)
    assert len(fake_feishu.cards()) == 2
    assert len(fake_openai.requests) == 2


def test_group_message_without_mention_is_ignored_and_with_mention_answered(
    client, worker, feishu_bot, fake_feishu, fake_openai
):
    fake_openai.reply = "Hi group."
    other = message_event(
        token=VERIFICATION_TOKEN,
        chat_type="group",
        chat_id="oc_group",
        text="@_user_1 what do you think?",
        mentions=[mention("@_user_1", "ou_someone_else", "Bob")],
    )
    plain = message_event(
        token=VERIFICATION_TOKEN, chat_type="group", chat_id="oc_group", text="hi"
    )
    assert post_event(client, feishu_bot, other).status_code == 200
    assert post_event(client, feishu_bot, plain).status_code == 200
    assert Message.objects.count() == 0

    addressed = message_event(
        token=VERIFICATION_TOKEN,
        chat_type="group",
        chat_id="oc_group",
        text="@_user_1 ask @_user_2 about lunch",
        mentions=[
            mention("@_user_1", BOT_OPEN_ID, "Assistant"),
            mention("@_user_2", "ou_bob", "Bob"),
        ],
    )
    assert post_event(client, feishu_bot, addressed).status_code == 200

    wait_for(lambda: delivered_answers())
    inbound = Message.objects.get(direction=Direction.IN)
    assert inbound.text == "ask @Bob about lunch"
    assert inbound.conversation.chat_type == "group"
    assert inbound.conversation.chat_id == "oc_group"
    cards = fake_feishu.cards()
    assert len(cards) == 1
    assert cards[0].reply_to == addressed["event"]["message"]["message_id"]
    assert cards[0].text == "Hi group."


def test_post_with_image_becomes_text_and_an_image_attachment(
    client, worker, feishu_bot, fake_feishu
):
    content = {
        "title": "Look",
        "content": [
            [{"tag": "at", "user_id": "@_user_1"}, {"tag": "text", "text": " what is this?"}],
            [{"tag": "img", "image_key": "img_v2_abc"}],
            [{"tag": "a", "text": "a link", "href": "https://example.com"}],
        ],
    }
    event = message_event(
        token=VERIFICATION_TOKEN,
        chat_type="group",
        message_type="post",
        content=content,
        mentions=[mention("@_user_1", BOT_OPEN_ID, "Assistant")],
    )

    message_id = event["event"]["message"]["message_id"]
    fake_feishu.add_resource(message_id, "img_v2_abc", b"\x89PNG post image", "image/png")

    assert post_event(client, feishu_bot, event).status_code == 200

    inbound = wait_for(settled_inbound)
    assert inbound.text == "Look\nwhat is this?\na link"
    attachment = MessageAttachment.objects.get(message=inbound)
    assert (attachment.kind, attachment.platform_file_id) == ("image", "img_v2_abc")
    # The worker fetched the image through the message-resource API.
    assert attachment.content.read() == b"\x89PNG post image"
    wait_for(lambda: delivered_answers())


@pytest.mark.parametrize(
    ("message_type", "content", "kind", "key", "file_name"),
    [
        ("image", {"image_key": "img_v2_1"}, "image", "img_v2_1", ""),
        (
            "file",
            {"file_key": "file_v2_1", "file_name": "report.pdf"},
            "file",
            "file_v2_1",
            "report.pdf",
        ),
        (
            "audio",
            {"file_key": "file_v2_voice", "duration": 3000},
            "audio",
            "file_v2_voice",
            "voice.ogg",
        ),
    ],
)
def test_media_messages_are_stored_with_their_attachment(
    client, worker, feishu_bot, fake_feishu, message_type, content, kind, key, file_name
):
    event = message_event(token=VERIFICATION_TOKEN, message_type=message_type, content=content)
    fake_feishu.add_resource(event["event"]["message"]["message_id"], key, b"media-bytes", "")

    assert post_event(client, feishu_bot, event).status_code == 200

    inbound = wait_for(settled_inbound)
    attachment = MessageAttachment.objects.get(message=inbound)
    assert (attachment.kind, attachment.platform_file_id, attachment.file_name) == (
        kind,
        key,
        file_name,
    )
    resource_call = wait_for(lambda: fake_feishu.calls_of("resource"))[0]
    assert resource_call.path.endswith(f"/resources/{key}")
    assert resource_call.query["type"] == ["image" if kind == "image" else "file"]
    # Whatever the pipeline makes of the media, the chat gets exactly one reply card.
    wait_for(lambda: fake_feishu.cards())
    assert len(fake_feishu.cards()) == 1


@pytest.mark.django_db
def test_download_fetches_the_message_resource(feishu_bot, fake_feishu):
    fake_feishu.add_resource("om_user_9", "img_v2_9", b"\x89PNG fake image", "image/png")
    adapter = adapter_for(feishu_bot)

    data = adapter.download(
        message_platform_id="om_user_9",
        attachment=InboundAttachment(kind="image", platform_file_id="img_v2_9"),
    )

    assert data == b"\x89PNG fake image"
    call = fake_feishu.calls_of("resource")[0]
    assert call.query["type"] == ["image"]


# Buttons ------------------------------------------------------------------------------------------


def _answered(client, feishu_bot, fake_feishu, text="hello"):
    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text=text))
    return wait_for(lambda: delivered_answers())[0]


def test_feedback_button_is_stored_and_answered_with_a_toast(
    client, worker, feishu_bot, fake_feishu
):
    answer = _answered(client, feishu_bot, fake_feishu)
    press = card_action_event(token=VERIFICATION_TOKEN, action="helpful", message_id=answer.pk)

    response = post_event(client, feishu_bot, press)

    assert response.status_code == 200
    assert response.json() == {"toast": {"type": "info", "content": "Thanks for the feedback!"}}
    feedback = Feedback.objects.get()
    assert (feedback.message_id, feedback.rating, feedback.platform_user_id) == (
        answer.pk,
        "helpful",
        "ou_user_ada",
    )
    # Feishu retries callbacks: the same event is not counted twice.
    again = post_event(client, feishu_bot, press)
    assert again.status_code == 200
    assert again.json() == {}
    assert Feedback.objects.count() == 1


def test_regenerate_button_answers_again_in_a_new_card(
    client, worker, feishu_bot, fake_feishu, fake_openai
):
    answer = _answered(client, feishu_bot, fake_feishu)
    fake_openai.reply = "A second, better answer."

    response = post_event(
        client,
        feishu_bot,
        card_action_event(token=VERIFICATION_TOKEN, action="regenerate", message_id=answer.pk),
    )

    assert response.json() == {"toast": {"type": "info", "content": "Writing a new answer…"}}
    wait_for(lambda: len(delivered_answers()) == 2)
    cards = fake_feishu.cards()
    assert len(cards) == 2
    assert cards[1].text == "A second, better answer."
    assert cards[1].reply_to == cards[0].reply_to
    assert len(fake_openai.requests) == 2


# Streaming, faults, tokens ----------------------------------------------------------------


def test_streaming_updates_one_card_and_finishes_with_the_full_answer(
    client, worker, feishu_bot, fake_feishu, fake_openai
):
    full = " ".join(f"word{i}" for i in range(60))
    fake_openai.reply = full
    fake_openai.chunk_size = 12
    fake_openai.chunk_delay = 0.1  # a slow model: about 3 s of streaming

    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="stream please"))

    answer = wait_for(lambda: delivered_answers())[0]
    assert len(fake_feishu.cards()) == 1
    assert len(fake_feishu.calls_of("reply")) == 1
    card = fake_feishu.cards()[0]
    assert answer.platform_message_id == card.message_id
    # The card grew while the model wrote: never empty, every version a prefix of the
    # answer, and the last one the whole answer with its buttons.
    assert len(card.versions) >= 3
    shown = [json.loads(v)["elements"][0]["content"] for v in card.versions]
    for partial in shown[:-1]:
        assert partial.endswith(" …")
        assert partial.removesuffix(" …").strip()
        assert full.startswith(partial.removesuffix(" …"))
    assert len(set(shown)) == len(shown)  # no update without a change
    assert card.text == full
    assert len(card.buttons) == 3
    assert all(not json.loads(v)["elements"][1:] for v in card.versions[:-1])


def test_rate_limits_and_server_errors_still_deliver_exactly_once(
    client, worker, feishu_bot, fake_feishu, fake_openai
):
    fake_openai.reply = "Answer after the storm."
    fake_feishu.fail("reply", 429, reset=1)
    fake_feishu.fail("reply", 500, times=2)

    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="hi"))

    answer = wait_for(lambda: delivered_answers(), timeout=60)[0]
    cards = fake_feishu.cards()
    assert len(cards) == 1
    assert cards[0].text == "Answer after the storm."
    assert len(fake_feishu.calls_of("reply")) >= 4  # three failures, then the card
    assert answer.delivery_attempts >= 2


def test_card_update_frequency_limit_is_retried_and_the_card_completed(
    client, worker, feishu_bot, fake_feishu, fake_openai
):
    fake_openai.reply = "Streamed, then throttled, then complete."
    # Slow enough that the card is created while streaming, then patched.
    fake_openai.chunk_size = 5
    fake_openai.chunk_delay = 0.2
    fake_feishu.fail("patch", 400, code=230020, times=2)

    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="hi"))

    answer = wait_for(lambda: delivered_answers(), timeout=60)[0]
    cards = fake_feishu.cards()
    assert len(cards) == 1
    assert cards[0].text == "Streamed, then throttled, then complete."
    assert answer.delivery_attempts >= 2


def test_tenant_token_is_fetched_once_and_shared_through_redis(
    client, worker, feishu_bot, fake_feishu
):
    for number, text in enumerate(("one", "two", "three"), start=1):
        post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text=text))
        wait_for(lambda number=number: len(delivered_answers()) == number)

    token_calls = fake_feishu.calls_of("token")
    assert len(token_calls) == 1
    token = next(iter(fake_feishu.tokens))
    used = {
        call.headers["authorization"]
        for call in fake_feishu.calls
        if call.operation in ("reply", "patch")
    }
    assert used == {f"Bearer {token}"}
    cached = get_redis().get(
        f"assistant:feishu:token:self_tenant_token:{feishu_bot.config['app_id']}"
    )
    assert cached.decode() == token


def test_bot_learns_its_open_id_from_feishu_to_recognise_its_mentions(
    client, worker, feishu_bot, fake_feishu
):
    feishu_bot.platform_username = ""
    feishu_bot.save(update_fields=["platform_username"])
    someone_else = message_event(
        token=VERIFICATION_TOKEN,
        chat_type="group",
        text="@_user_1 hi",
        mentions=[mention("@_user_1", "ou_bob", "Bob")],
    )
    addressed = message_event(
        token=VERIFICATION_TOKEN,
        chat_type="group",
        text="@_user_1 hi bot",
        mentions=[mention("@_user_1", BOT_OPEN_ID, "Assistant")],
    )

    assert post_event(client, feishu_bot, someone_else).status_code == 200
    assert post_event(client, feishu_bot, addressed).status_code == 200

    wait_for(lambda: delivered_answers())
    feishu_bot.refresh_from_db()
    assert feishu_bot.platform_username == BOT_OPEN_ID
    assert len(fake_feishu.calls_of("bot_info")) == 1
    inbound = Message.objects.get(direction=Direction.IN)
    assert inbound.text == "hi bot"
    assert inbound.external_id == addressed["header"]["event_id"]


def test_long_answer_is_split_into_cards_under_the_size_limit(
    client, worker, feishu_bot, fake_feishu, fake_openai
):
    paragraph = "这是一个很长的回答。" * 40  # CJK: 3 bytes a character
    full = "\n\n".join(f"{n}. {paragraph}" for n in range(60))
    fake_openai.reply = full
    fake_openai.chunk_size = 2000

    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="write a lot"))

    answer = wait_for(lambda: delivered_answers(), timeout=60)[0]
    cards = fake_feishu.cards()
    assert len(cards) >= 3
    assert all(len(card.versions[-1].encode()) <= 30 * 1024 for card in cards)
    assert "\n\n".join(card.text for card in cards) == full
    assert [card.uuid for card in cards] == [f"answer-{answer.pk}-{n}" for n in range(len(cards))]
    assert [len(card.buttons) for card in cards] == [0] * (len(cards) - 1) + [3]
    assert answer.platform_message_id == cards[0].message_id


def test_a_token_feishu_no_longer_accepts_is_replaced_and_the_answer_delivered(
    client, worker, feishu_bot, fake_feishu
):
    key = f"assistant:feishu:token:self_tenant_token:{feishu_bot.config['app_id']}"
    get_redis().set(key, "t-revoked", ex=3600)

    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="hi"))

    wait_for(lambda: delivered_answers(), timeout=60)
    assert len(fake_feishu.cards()) == 1
    rejected = [
        call
        for call in fake_feishu.calls
        if call.headers.get("authorization") == "Bearer t-revoked"
    ]
    assert rejected  # the stale token was tried, refused (99991663), then replaced
    assert len(fake_feishu.calls_of("token")) == 1
    assert get_redis().get(key).decode() in fake_feishu.tokens


def test_wrong_app_secret_fails_the_answer_without_retrying_forever(
    client, worker, feishu_bot, fake_feishu
):
    feishu_bot.config = {**feishu_bot.config, "app_secret": "wrong-secret"}
    feishu_bot.save(update_fields=["config"])

    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="hi"))

    failed = wait_for(
        lambda: Message.objects.filter(direction=Direction.OUT, status=MessageStatus.FAILED).first()
    )
    assert "tenant_access_token" in failed.error
    assert failed.delivery_attempts == 1
    assert fake_feishu.cards() == []


@pytest.mark.django_db
def test_bot_without_verification_token_rejects_every_call(client, plain_feishu_bot):
    del plain_feishu_bot.config["verification_token"]
    plain_feishu_bot.save(update_fields=["config"])

    response = post_event(client, plain_feishu_bot, url_verification(token=""))

    assert response.status_code == 403


def test_allowlist_refusal_is_a_card_without_buttons(client, worker, feishu_bot, fake_feishu):
    feishu_bot.access_policy = "allowlist"
    feishu_bot.allowed_user_ids = ["ou_somebody_else"]
    feishu_bot.save(update_fields=["access_policy", "allowed_user_ids"])

    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="hi"))

    wait_for(lambda: fake_feishu.cards())
    card = fake_feishu.cards()[0]
    assert "only available to approved users" in card.text
    assert card.buttons == []
    assert Message.objects.get(direction=Direction.IN).status == MessageStatus.SKIPPED


def test_group_keyword_trigger(client, worker, feishu_bot, fake_feishu, fake_openai):
    feishu_bot.group_trigger = "keyword"
    feishu_bot.group_keyword = "/ask"
    feishu_bot.save(update_fields=["group_trigger", "group_keyword"])
    group = {"chat_type": "group", "chat_id": "oc_team"}

    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="chatter", **group))
    post_event(
        client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="/ask why?", **group)
    )

    wait_for(lambda: delivered_answers())
    inbound = Message.objects.get(direction=Direction.IN)
    assert inbound.text == "why?"
    assert len(fake_feishu.cards()) == 1


def test_reset_command_in_a_group_counts_only_when_addressed_to_the_bot(
    client, worker, feishu_bot, fake_feishu
):
    group = {"chat_type": "group", "chat_id": "oc_team"}
    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="/reset", **group))
    addressed = message_event(
        token=VERIFICATION_TOKEN,
        text="@_user_1 /reset",
        mentions=[mention("@_user_1", BOT_OPEN_ID, "Assistant")],
        **group,
    )
    post_event(client, feishu_bot, addressed)

    wait_for(lambda: fake_feishu.cards())
    inbound = Message.objects.get(direction=Direction.IN)
    assert inbound.external_id == addressed["header"]["event_id"]
    assert inbound.conversation.closed_at is not None
    assert "new conversation" in fake_feishu.cards()[0].text
