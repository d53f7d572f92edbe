"""Flood limits through the real seams: webhooks and the worker, the web chat, the API, login."""

from __future__ import annotations

import asyncio

from rest_framework.authtoken.models import Token

from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Message
from apps.guard.models import SINGLETON_ID, FloodLimits
from apps.guard.services import client_address, ingest_flood_check
from tests.conversations.test_web_chat import communicator_for, receive_until
from tests.fakes.server import wait_for
from tests.telegram_updates import post_update, private_text_update

USER_NOTICE = "You are sending messages faster than I can answer"
BOT_NOTICE = "I am receiving too many messages right now"


def limits_set(**fields) -> FloodLimits:
    limits, _ = FloodLimits.objects.update_or_create(pk=SINGLETON_ID, defaults=fields)
    return limits


def inbound(sender_id: str):
    return Message.objects.filter(direction=Direction.IN, sender_id=sender_id)


def notices():
    return Message.objects.filter(direction=Direction.OUT, author=Author.SYSTEM)


def settled(sender_ids: list[str]) -> bool:
    """Every inbound message of these senders answered or skipped, every reply delivered."""
    messages = Message.objects.filter(direction=Direction.IN, sender_id__in=sender_ids)
    outbound = Message.objects.filter(direction=Direction.OUT)
    return (
        not messages.exclude(status__in=[MessageStatus.ANSWERED, MessageStatus.SKIPPED]).exists()
        and not outbound.exclude(status=MessageStatus.DELIVERED).exists()
    )


def test_a_flooding_user_is_told_once_and_does_not_starve_others(
    client, worker, telegram_bot, fake_telegram, staff_user
):
    # Set in the admin, as an operator would: 3 messages per user, 4 per bot, per minute.
    client.force_login(staff_user)
    change = client.get("/admin/guard/floodlimits/", follow=True)
    assert change.status_code == 200 and change.redirect_chain[-1][0].endswith(
        f"/admin/guard/floodlimits/{SINGLETON_ID}/change/"
    )
    response = client.post(
        f"/admin/guard/floodlimits/{SINGLETON_ID}/change/",
        {
            "enabled": "on",
            "user_messages_per_minute": 3,
            "bot_messages_per_minute": 4,
            "notice_interval_seconds": 60,
            "web_chat_messages_per_minute": 30,
            "api_requests_per_minute": 300,
            "login_attempts_per_minute": 10,
        },
    )
    assert response.status_code == 302
    client.logout()

    for number in range(8):
        update = private_text_update(f"question {number}", user_id=501)
        assert post_update(client, telegram_bot, update).status_code == 200  # never 429
    assert (
        post_update(client, telegram_bot, private_text_update("hi", user_id=502)).status_code == 200
    )

    wait_for(lambda: settled(["501", "502"]))
    # Nothing dropped: all 8 stored; 5 beyond the limit skipped, with why.
    assert inbound("501").count() == 8
    skipped = inbound("501").filter(status=MessageStatus.SKIPPED)
    assert skipped.count() == 5 and set(skipped.values_list("error", flat=True)) == {"rate limited"}
    assert list(skipped.values_list("text", flat=True)) == [f"question {n}" for n in range(3, 8)]
    assert inbound("501").filter(status=MessageStatus.ANSWERED).count() == 3
    # The refused flood took nothing from the bot's bucket: the other user is answered.
    assert inbound("502").get().status == MessageStatus.ANSWERED
    # One notice for five refused messages, in the flooding user's chat, delivered.
    [notice] = notices()
    assert notice.text.startswith(USER_NOTICE) and notice.reply_to.sender_id == "501"
    assert [m.text for m in fake_telegram.chat(501)].count(notice.text) == 1
    assert not any(USER_NOTICE in m.text for m in fake_telegram.chat(502))
    # Staff find them in the admin.
    client.force_login(staff_user)
    listed = client.get(
        "/admin/conversations/message/", {"status__exact": "skipped", "q": "rate limited"}
    )
    assert listed.status_code == 200 and "5 messages" in listed.content.decode()


def test_the_bot_limit_refuses_every_user_and_the_notice_is_in_their_language(
    client, worker, telegram_bot, fake_telegram
):
    limits_set(user_messages_per_minute=0, bot_messages_per_minute=2)

    for user_id, text in [
        (601, "hello"),
        (602, "hello again"),
        (603, "你好，请问今天天气怎么样？"),
    ]:
        assert (
            post_update(
                client, telegram_bot, private_text_update(text, user_id=user_id)
            ).status_code
            == 200
        )

    wait_for(lambda: settled(["601", "602", "603"]))
    assert inbound("601").get().status == inbound("602").get().status == MessageStatus.ANSWERED
    refused = inbound("603").get()
    assert (refused.status, refused.error) == (MessageStatus.SKIPPED, "rate limited")
    [notice] = notices()
    assert notice.reply_to_id == refused.pk
    assert "消息太多" in notice.text and BOT_NOTICE not in notice.text


def test_limits_off_limit_nothing(client, worker, telegram_bot):
    limits_set(enabled=False, user_messages_per_minute=1)

    for number in range(3):
        post_update(client, telegram_bot, private_text_update(f"q{number}", user_id=701))

    wait_for(lambda: settled(["701"]))
    assert not inbound("701").filter(status=MessageStatus.SKIPPED).exists()
    assert not notices().exists()


def test_the_api_answers_429_with_retry_after_per_client_address(
    client, transactional_db, staff_user
):
    limits_set(api_requests_per_minute=2)
    token = Token.objects.create(user=staff_user)
    headers = {"Authorization": f"Token {token.key}"}

    first = [client.get("/api/v1/bots/", headers=headers).status_code for _ in range(2)]
    refused = client.get("/api/v1/bots/", headers=headers)
    other_address = client.get("/api/v1/bots/", headers=headers, REMOTE_ADDR="10.0.0.9")

    assert first == [200, 200]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert other_address.status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_client_is_limited(
    client, transactional_db, staff_user, settings
):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    limits_set(api_requests_per_minute=1)
    headers = {"Authorization": f"Token {Token.objects.create(user=staff_user).key}"}

    def get(forwarded: str) -> int:
        return client.get(
            "/api/v1/bots/", headers={**headers, "X-Forwarded-For": forwarded}
        ).status_code

    assert get("203.0.113.7") == 200
    assert get("203.0.113.7") == 429
    assert get("198.51.100.1, 203.0.113.8") == 200  # the proxy's own hop counts, not the first


def test_client_address_trusts_forwarded_for_only_from_trusted_proxies(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_address(remote_addr="10.1.2.3", forwarded_for="1.2.3.4, 10.0.0.7") == "1.2.3.4"
    assert client_address(remote_addr="8.8.8.8", forwarded_for="1.2.3.4") == "8.8.8.8"
    assert client_address(remote_addr=None) == "unknown"


def test_login_attempts_per_address_are_limited_before_any_password_is_checked(
    client, transactional_db, staff_user
):
    limits_set(login_attempts_per_minute=3)

    def attempt(password: str, **extra):
        return client.post(
            "/admin/login/?next=/admin/",
            {"username": "staff", "password": password},
            HTTP_ACCEPT_LANGUAGE="zh-hans",
            **extra,
        )

    assert [attempt("wrong").status_code for _ in range(3)] == [200, 200, 200]  # form again
    refused = attempt("staff-password-1")  # even the right one: the address is over its limit
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "登录" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert attempt("staff-password-1", REMOTE_ADDR="10.0.0.5").status_code == 302


def test_web_chat_messages_per_address_get_an_error_event(client, worker, web_bot):
    limits_set(web_chat_messages_per_minute=2)
    communicator = communicator_for(client, web_bot)

    async def scenario():
        await communicator.connect()
        await communicator.receive_json_from()  # history
        acks = []
        for number in range(2):
            await communicator.send_json_to({"type": "message", "id": f"c{number}", "text": "hi"})
            acks.append((await receive_until(communicator, lambda e: e["type"] == "ack"))[-1])
        await communicator.send_json_to({"type": "message", "id": "c2", "text": "hi"})
        error = (await receive_until(communicator, lambda e: e["type"] == "error"))[-1]
        await communicator.disconnect()
        return acks, error

    acks, error = asyncio.run(scenario())
    assert all(ack["message_id"] for ack in acks)
    assert error["code"] == "rate_limited" and error["retry_after"] >= 1
    assert "too fast" in error["error"]
    assert not Message.objects.filter(platform_message_id="c2").exists()


def test_a_changed_limit_applies_to_the_next_message(transactional_db, django_assert_num_queries):
    """Every process reads the limits again once the configuration version moved;
    until then a check costs no query."""
    limits_set(user_messages_per_minute=2, bot_messages_per_minute=100)
    first = ingest_flood_check(bot_id="b", user_id="u")  # reads the new limits
    with django_assert_num_queries(0):
        decisions = [first] + [ingest_flood_check(bot_id="b", user_id="u") for _ in range(2)]
    assert [decision.allowed for decision in decisions] == [True, True, False]
    assert decisions[2].limit == "user" and decisions[2].notice
    assert 1 <= decisions[2].retry_after <= 30  # one message drains in 60 s / 2
    assert not ingest_flood_check(bot_id="b", user_id="u").notice  # told once

    limits_set(user_messages_per_minute=3)  # raised: applies at once
    assert ingest_flood_check(bot_id="b", user_id="u").allowed
    assert not ingest_flood_check(bot_id="b", user_id="u").allowed
