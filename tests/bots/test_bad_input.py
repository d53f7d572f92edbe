"""Bad input on the webhooks: inauthentic or unreadable is 4xx; authentic but unusable is
kept as an unprocessed event and answered 2xx; nothing is ever a 500 or lost in silence.

The cases are those an operator reported (issues 10 and 13): shapes Telegram and Feishu
never send but proxies, old servers and attackers with a leaked secret do.
"""

from __future__ import annotations

import copy
import json

import pytest
from django.contrib.auth import get_user_model

from apps.audit.models import AuditEvent
from apps.bots.choices import UnprocessedStatus
from apps.bots.models import UnprocessedEvent
from apps.conversations.choices import Direction
from apps.conversations.models import Message, MessageAttachment
from tests import feishu_events
from tests.feishu_events import VERIFICATION_TOKEN, message_event, post_event, signed_headers
from tests.telegram_updates import photo_update, post_body, post_update, private_text_update

fake_feishu = feishu_events.fake_feishu
feishu_bot = feishu_events.feishu_bot
plain_feishu_bot = feishu_events.plain_feishu_bot

pytestmark = pytest.mark.django_db


def kept(reason_part: str) -> UnprocessedEvent:
    [event] = UnprocessedEvent.objects.all()
    assert reason_part in event.reason
    assert event.status == UnprocessedStatus.NEW
    return event


def inbound() -> list[Message]:
    return list(Message.objects.filter(direction=Direction.IN))


def without(update: dict, *path: str) -> dict:
    changed = copy.deepcopy(update)
    target = changed
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return changed


def with_value(update: dict, value, *path: str) -> dict:
    changed = copy.deepcopy(update)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


# Telegram: authentic but unusable -> kept, 200 ------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda u: without(u, "message", "chat"), "malformed Update"),
        (lambda u: with_value(u, 42, "message", "text"), "not text"),
        (lambda u: with_value(u, ["a", "b"], "message", "text"), "not text"),
        (lambda u: with_value(u, 1e20, "message", "date"), "malformed Update"),
        (lambda u: with_value(u, "abc", "message", "chat", "id"), "chat.id is not an integer"),
        (lambda u: with_value(u, float("inf"), "message", "message_id"), "message_id"),
        (lambda u: with_value(u, 10**30, "update_id"), "update_id is out of range"),
        (lambda u: with_value(u, "7", "update_id"), "update_id is not an integer"),
        (lambda u: with_value(u, 10**30, "message", "from", "id"), "from.id is out of range"),
    ],
    ids=[
        "no-chat",
        "text-number",
        "text-list",
        "date-1e20",
        "chat-id-string",
        "message-id-infinity",
        "update-id-huge",
        "update-id-string",
        "from-id-huge",
    ],
)
def test_an_authentic_update_we_cannot_use_is_kept_and_answered_200(
    client, telegram_bot, change, reason
):
    update = change(private_text_update("hello"))

    response = post_body(client, telegram_bot, json.dumps(update).encode())

    assert response.status_code == 200
    assert inbound() == []
    event = kept(reason)
    assert json.loads(bytes(event.body)) == json.loads(json.dumps(update))


def test_nul_and_lone_surrogates_are_removed_and_the_message_stored(client, telegram_bot):
    update = private_text_update("hello")
    update["message"]["text"] = "he\u0000llo \ud800world"
    update["message"]["from"]["first_name"] = "A\u0000da"

    response = post_body(client, telegram_bot, json.dumps(update).encode())

    assert response.status_code == 200 and response.json()["stored"] == 1
    [message] = inbound()
    assert message.text == "hello ?world"
    assert not UnprocessedEvent.objects.exists()


def test_missing_is_bot_and_file_unique_id_do_not_lose_the_message(client, telegram_bot):
    # Fields Bot API docs call required, missing in payloads seen from proxies and
    # older servers: the message is still understood.
    update = photo_update("what is this?")
    del update["message"]["from"]["is_bot"]
    for size in update["message"]["photo"]:
        del size["file_unique_id"]

    response = post_update(client, telegram_bot, update)

    assert response.status_code == 200 and response.json()["stored"] == 1
    [message] = inbound()
    assert message.text == "what is this?"
    assert MessageAttachment.objects.get(message=message).platform_file_id == "photo-large"


@pytest.mark.parametrize("first_name", [12345, None, ["x"]], ids=["number", "null", "list"])
def test_a_strange_sender_name_never_breaks_the_staff_pages(
    client, telegram_bot, staff_user, first_name
):
    update = private_text_update("hello")
    update["message"]["from"]["first_name"] = first_name
    update["message"]["chat"]["first_name"] = first_name

    assert post_body(client, telegram_bot, json.dumps(update).encode()).status_code == 200

    client.force_login(staff_user)
    for page in ("/console/", "/console/history/", "/admin/conversations/conversation/"):
        assert client.get(page).status_code == 200, page


# Telegram: not authentic or not JSON -> 4xx, nothing kept --------------------------------


@pytest.mark.parametrize(
    "body",
    [b"not json", b"\xff\xfe", b"[" * 5000 + b"]" * 5000, b'{"update_id": 1' + b"}" * 0],
    ids=["text", "not-utf8", "nested-5000", "truncated"],
)
def test_a_body_that_is_not_readable_json_is_400_and_nothing_is_kept(client, telegram_bot, body):
    response = post_body(client, telegram_bot, body)

    assert response.status_code == 400
    assert not inbound() and not UnprocessedEvent.objects.exists()


def test_a_wrong_secret_is_403_and_nothing_is_kept(client, telegram_bot):
    response = post_update(client, telegram_bot, private_text_update("hi"), secret="wrong")

    assert response.status_code == 403
    assert not inbound() and not UnprocessedEvent.objects.exists()


# Feishu ---------------------------------------------------------------------------------


def test_feishu_sender_with_only_a_user_id_is_answered(client, plain_feishu_bot):
    event = message_event(token=VERIFICATION_TOKEN, text="hi")
    event["event"]["sender"]["sender_id"] = {"user_id": "u_only"}

    assert post_event(client, plain_feishu_bot, event).status_code == 200

    [message] = inbound()
    assert message.sender_id == "u_only" and message.text == "hi"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e["header"].update(event_id="e" * 200), "event_id"),
        (lambda e: e["event"]["message"].update(content="[" * 5000), "content"),
        (lambda e: e["event"]["message"].update(content="[1, 2]"), "content"),
        (lambda e: e["event"].pop("message"), "without a message"),
        (lambda e: e["event"]["sender"].update(sender_id={}), "sender id"),
    ],
    ids=["event-id-200", "content-nested-5000", "content-list", "no-message", "no-sender-id"],
)
def test_an_authentic_feishu_event_we_cannot_use_is_kept(client, plain_feishu_bot, change, reason):
    event = message_event(token=VERIFICATION_TOKEN)
    change(event)

    response = post_event(client, plain_feishu_bot, event)

    assert response.status_code == 200
    assert inbound() == []
    kept(reason)


def test_feishu_checks_the_signature_before_decrypting(client, feishu_bot):
    # Garbage that cannot be decrypted, with a bad signature: refused as inauthentic
    # (403), not reported as undecryptable (which would tell an attacker it was read).
    body = json.dumps({"encrypt": "bm90LWEtcmVhbC1jaXBoZXJ0ZXh0"}).encode()
    headers = signed_headers(body, "another-key")

    response = post_event(client, feishu_bot, {}, raw=body, headers=headers)

    assert response.status_code == 403
    assert "signature" in response.json()["msg"]


def test_a_feishu_timestamp_of_400_nines_is_403(client, feishu_bot):
    body = json.dumps({"encrypt": "x"}).encode()
    headers = signed_headers(body, feishu_bot.config["encrypt_key"])
    headers["X-Lark-Request-Timestamp"] = "9" * 400

    response = post_event(client, feishu_bot, {}, raw=body, headers=headers)

    assert response.status_code == 403


# Replay from the admin --------------------------------------------------------------------


def test_a_kept_event_is_replayed_from_the_admin_and_audited(client, telegram_bot, staff_user):
    good = private_text_update("finally understood")
    event = UnprocessedEvent.objects.create(
        bot=telegram_bot,
        platform=telegram_bot.platform,
        body=json.dumps(good).encode(),
        reason="an older version could not read it",
    )
    bad = UnprocessedEvent.objects.create(
        bot=telegram_bot,
        platform=telegram_bot.platform,
        body=json.dumps(without(good, "message", "chat")).encode(),
        reason="no chat",
    )
    client.force_login(staff_user)

    response = client.post(
        "/admin/bots/unprocessedevent/",
        {"action": "replay_events", "_selected_action": [event.pk, bad.pk]},
        follow=True,
    )

    assert response.status_code == 200
    event.refresh_from_db()
    bad.refresh_from_db()
    assert event.status == UnprocessedStatus.REPLAYED and "1" in event.result
    assert [m.text for m in inbound()] == ["finally understood"]
    assert bad.status == UnprocessedStatus.NEW and "Replay failed" in bad.result
    assert UnprocessedEvent.objects.count() == 2  # a failed replay keeps the one event
    actions = AuditEvent.objects.filter(action="unprocessed_event.replay")
    assert actions.count() == 2 and actions.first().actor == staff_user
    detail = client.get(f"/admin/bots/unprocessedevent/{bad.pk}/change/")
    assert detail.status_code == 200 and "no chat" in detail.content.decode()


def test_a_reviewer_without_permission_cannot_replay(client, telegram_bot):
    event = UnprocessedEvent.objects.create(
        bot=telegram_bot, platform=telegram_bot.platform, body=b"{}", reason="x"
    )
    viewer = get_user_model().objects.create_user("viewer", password="x-password-1", is_staff=True)
    client.force_login(viewer)

    response = client.post(
        "/admin/bots/unprocessedevent/",
        {"action": "replay_events", "_selected_action": [event.pk]},
    )

    assert response.status_code == 403
    event.refresh_from_db()
    assert event.status == UnprocessedStatus.NEW
