"""Turns on a real worker: merging, parallel conversations, failure and retry, budgets,
cost, the response cache, context compaction and media, over the Telegram webhook."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.bots.services import bot_update
from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Conversation, Message, MessageAttachment
from apps.conversations.services import turn_inputs, turns
from apps.core.redis import get_redis
from apps.providers.client import INTERRUPTED_NOTE
from apps.providers.models import ModelProfile
from apps.providers.selectors import usage_by_day, usage_totals
from tests.fakes.server import wait_for
from tests.telegram_updates import photo_update, post_update, private_text_update, voice_update

CHAT = 4242


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.MODEL_RETRY_BASE_SECONDS = 0.05
    settings.MODEL_RETRY_MAX_SECONDS = 0.2
    redis = get_redis()
    # Row ids restart with each test's fresh tables, so per-message Redis state (delivery
    # locks of earlier tests' messages) must not outlive its test.
    for pattern in ("assistant:provider:*", "assistant:answer-cache:*", "assistant:deliver:*"):
        keys = list(redis.scan_iter(pattern))
        if keys:
            redis.delete(*keys)


def outbound(count: int, author: str | None = None) -> list[Message]:
    """Wait until `count` outbound messages (of `author`) are delivered; return them in order."""

    def rows():
        query = Message.objects.filter(direction=Direction.OUT, status=MessageStatus.DELIVERED)
        if author:
            query = query.filter(author=author)
        found = list(query.order_by("id"))
        return found if len(found) >= count else None

    return wait_for(rows, timeout=60)


def shown(fake_telegram, chat: int = CHAT) -> list[str]:
    return [message.text for message in fake_telegram.chat(chat)]


def update_profile(profile: ModelProfile, **fields) -> ModelProfile:
    for name, value in fields.items():
        setattr(profile, name, value)
    profile.save()
    return profile


def test_messages_arriving_during_a_turn_are_answered_together_in_order(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    fake_openai.reply = "First answer, slowly."
    fake_openai.chunk_delay = 0.2  # the first turn takes about a second

    post_update(client, telegram_bot, private_text_update("one"))
    wait_for(lambda: len(fake_openai.requests) == 1)
    fake_openai.reply = "Second answer."
    post_update(client, telegram_bot, private_text_update("two"))
    post_update(client, telegram_bot, private_text_update("three"))

    first, second = outbound(2, Author.ASSISTANT)
    assert len(fake_openai.requests) == 2  # two turns, not three
    merged = fake_openai.requests[1]["messages"]
    assert merged[-4:] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "First answer, slowly."},
        {"role": "user", "content": "two"},
        {"role": "user", "content": "three"},
    ]
    inbound = Message.objects.filter(direction=Direction.IN).order_by("id")
    assert [m.text for m in inbound] == ["one", "two", "three"]
    assert {m.status for m in inbound} == {MessageStatus.ANSWERED}
    assert first.reply_to.text == "one" and second.reply_to.text == "three"
    assert shown(fake_telegram)[-1] == "Second answer."


def test_several_conversations_are_answered_in_parallel(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    fake_openai.chunk_delay = 0.3
    users = [5001, 5002, 5003, 5004]

    for user_id in users:
        post_update(
            client, telegram_bot, private_text_update(f"hi from {user_id}", user_id=user_id)
        )

    outbound(len(users), Author.ASSISTANT)
    assert fake_openai.max_in_flight >= 2  # the model streamed several answers at once
    for user_id in users:
        assert shown(fake_telegram, user_id) == [fake_openai.reply]


def test_a_short_model_outage_is_waited_out_and_answered_once(
    client, worker, telegram_bot, fake_telegram, fake_openai, settings
):
    settings.MODEL_OUTAGE_RETRY_SECONDS = 0.2
    provider = telegram_bot.profile.provider
    provider.cooldown_after_failures = 100  # this test is about waiting, not the cooldown
    provider.save()
    # Three turns' worth of failures (the provider is tried three times per turn).
    fake_openai.fail(429, times=6)
    fake_openai.fail(500, times=3)

    post_update(client, telegram_bot, private_text_update("are you there?"))

    [notice, answer] = outbound(2)
    assert notice.author == Author.SYSTEM and notice.text == turns.OUTAGE_NOTICE
    assert answer.author == Author.ASSISTANT and answer.text == fake_openai.reply
    assert shown(fake_telegram) == [turns.OUTAGE_NOTICE, fake_openai.reply]  # told once
    inbound = Message.objects.get(direction=Direction.IN)
    assert inbound.status == MessageStatus.ANSWERED
    waits = Message.objects.filter(author=Author.ASSISTANT, status=MessageStatus.FAILED)
    assert waits.count() == 3 and all("trying again" in m.error for m in waits)
    assert not get_redis().exists(turns._outage_key(inbound.conversation_id))


def test_when_every_profile_fails_the_user_gets_an_apology_and_staff_can_retry(
    client, worker, telegram_bot, fake_telegram, fake_openai, staff_user, settings
):
    settings.MODEL_OUTAGE_WAIT_SECONDS = 0  # give up at once (no waiting out an outage)
    provider = telegram_bot.profile.provider
    provider.cooldown_after_failures = 5  # three failures: not yet cooling down
    provider.save()
    fake_openai.fail(500, times=3)  # the profile's provider retries twice, then gives up

    post_update(client, telegram_bot, private_text_update("are you there?"))

    [apology] = outbound(1, Author.SYSTEM)
    assert apology.text == turns.APOLOGY
    assert shown(fake_telegram) == [turns.APOLOGY]
    inbound = Message.objects.get(direction=Direction.IN)
    assert inbound.status == MessageStatus.FAILED and "HTTP 500" in inbound.error
    failed = Message.objects.get(direction=Direction.OUT, author=Author.ASSISTANT)
    assert failed.status == MessageStatus.FAILED
    assert [a["outcome"] for a in failed.attempts] == ["failed", "failed", "failed"]

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")
    url = f"/api/v1/conversations/{inbound.conversation_id}/messages/{failed.pk}/retry/"
    response = api.post(url)

    assert response.status_code == 202, response.content
    [answer] = outbound(1, Author.ASSISTANT)
    assert answer.text == fake_openai.reply
    inbound.refresh_from_db()
    assert inbound.status == MessageStatus.ANSWERED
    assert shown(fake_telegram)[-1] == fake_openai.reply
    # Retrying what is no longer failed is refused.
    assert api.post(url).status_code == 409


def test_admin_action_retries_a_failed_message(
    client, worker, telegram_bot, fake_telegram, fake_openai, staff_user
):
    fake_openai.fail(401)
    post_update(client, telegram_bot, private_text_update("hello"))
    outbound(1, Author.SYSTEM)
    inbound = Message.objects.get(direction=Direction.IN, status=MessageStatus.FAILED)

    client.force_login(staff_user)
    response = client.post(
        "/admin/conversations/message/",
        {"action": "retry_failed", "_selected_action": [inbound.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Retrying 1 message" in response.content.decode()
    [answer] = outbound(1, Author.ASSISTANT)
    assert answer.reply_to_id == inbound.pk and answer.text == fake_openai.reply


def test_a_stall_after_text_ends_the_shown_answer_with_a_note(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    update_profile(telegram_bot.profile, stall_timeout=0.5)
    fake_openai.reply = "The answer starts well and then"
    fake_openai.stall_after_chunks = 3

    post_update(client, telegram_bot, private_text_update("tell me"))

    [answer] = outbound(1, Author.ASSISTANT)
    assert answer.text == "The answer s\n\n" + INTERRUPTED_NOTE
    assert answer.error.startswith("answer interrupted")
    assert shown(fake_telegram)[-1].endswith(INTERRUPTED_NOTE)
    assert len(fake_openai.requests) == 1


def test_fallback_profile_answers_and_attempts_say_why(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    from tests.factories import make_profile, make_provider
    from tests.fakes.openai_server import FakeOpenAI

    backup_server = FakeOpenAI(reply="From the backup.").start()
    try:
        backup = make_profile(provider=make_provider(base_url=backup_server.base_url))
        update_profile(telegram_bot.profile, fallback=backup, first_token_timeout=0.3)
        fake_openai.first_token_delay = 5

        post_update(client, telegram_bot, private_text_update("quick!"))

        [answer] = outbound(1, Author.ASSISTANT)
    finally:
        backup_server.stop()
    assert answer.text == "From the backup." and answer.profile_id == backup.pk
    assert [(a["profile_id"], a["outcome"], a["kind"]) for a in answer.attempts] == [
        (telegram_bot.profile_id, "failed", "first_token_timeout"),
        (backup.pk, "answered", ""),
    ]


def test_cost_and_usage_totals(client, worker, telegram_bot, fake_telegram, fake_openai):
    update_profile(
        telegram_bot.profile,
        price_input_per_1k=Decimal("0.5"),
        price_output_per_1k=Decimal("1.5"),
    )
    post_update(client, telegram_bot, private_text_update("price me"))
    [answer] = outbound(1, Author.ASSISTANT)
    fake_openai.report_usage = False
    post_update(client, telegram_bot, private_text_update("again"))
    _, estimated = outbound(2, Author.ASSISTANT)

    # The fake reports 11 prompt tokens and one completion token per chunk (7 here).
    assert (answer.prompt_tokens, answer.completion_tokens) == (11, 7)
    assert answer.cost == Decimal("0.0055") + Decimal("0.0105")
    assert not answer.tokens_estimated and estimated.tokens_estimated
    conversation = Conversation.objects.get()
    totals = usage_totals(conversation_id=conversation.pk)
    assert totals.answers == 2 and totals.estimated_answers == 1
    assert totals.prompt_tokens == 11 + estimated.prompt_tokens
    assert totals.cost == answer.cost + estimated.cost
    assert usage_totals(bot_id=telegram_bot.pk, day=timezone.localdate()) == totals
    yesterday = timezone.localdate() - timezone.timedelta(days=1)
    assert usage_totals(bot_id=telegram_bot.pk, day=yesterday).answers == 0
    by_day = usage_by_day(bot_id=telegram_bot.pk, days=2)
    assert [day for day, _ in by_day] == [yesterday, timezone.localdate()]
    assert by_day[0][1].answers == 0 and by_day[1][1] == totals


def test_bot_daily_budget_gives_a_polite_reply_and_no_model_call(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    bot_update(bot=telegram_bot, daily_token_budget=10)
    post_update(client, telegram_bot, private_text_update("first"))
    outbound(1, Author.ASSISTANT)  # 18 tokens: over the cap from now on

    post_update(client, telegram_bot, private_text_update("second", user_id=777))

    [refusal] = outbound(1, Author.SYSTEM)
    assert refusal.text == turns.BOT_BUDGET_REPLY
    assert len(fake_openai.requests) == 1
    assert shown(fake_telegram, 777) == [turns.BOT_BUDGET_REPLY]


def test_user_daily_budget_limits_only_that_user(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    bot_update(bot=telegram_bot, user_daily_token_budget=10)
    post_update(client, telegram_bot, private_text_update("first"))
    outbound(1, Author.ASSISTANT)

    post_update(client, telegram_bot, private_text_update("more please"))
    post_update(client, telegram_bot, private_text_update("hello", user_id=778))

    outbound(1, Author.SYSTEM)
    outbound(2, Author.ASSISTANT)
    assert shown(fake_telegram)[-1] == turns.USER_BUDGET_REPLY
    assert shown(fake_telegram, 778) == [fake_openai.reply]
    assert len(fake_openai.requests) == 2


def test_same_first_question_is_answered_from_the_cache(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    update_profile(telegram_bot.profile, cache_ttl=300)

    post_update(client, telegram_bot, private_text_update("What are your hours?"))
    outbound(1, Author.ASSISTANT)
    post_update(client, telegram_bot, private_text_update("What are your hours?", user_id=901))
    first, second = outbound(2, Author.ASSISTANT)

    assert len(fake_openai.requests) == 1
    assert not first.cached and second.cached
    assert second.text == first.text == fake_openai.reply
    assert second.prompt_tokens == 0 and second.cost == 0
    assert shown(fake_telegram, 901) == [fake_openai.reply]
    # A follow-up has history: never from the cache.
    post_update(client, telegram_bot, private_text_update("What are your hours?", user_id=901))
    outbound(3, Author.ASSISTANT)
    assert len(fake_openai.requests) == 2


def test_long_conversations_are_compacted_into_a_summary(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    update_profile(telegram_bot.profile, context_budget=400, max_tokens=64)
    summaries: list[dict] = []

    def reply_for(body):
        if "running summary" in str(body["messages"][0].get("content")):
            summaries.append(body)
            return "SUMMARY: the user counted."
        return "ok " + "z" * 200  # long answers fill the budget quickly

    fake_openai.reply_for = reply_for

    for number in range(6):
        post_update(client, telegram_bot, private_text_update(f"count {number} " + "y" * 200))
        outbound(number + 1, Author.ASSISTANT)

    conversation = Conversation.objects.get()
    assert conversation.summary == "SUMMARY: the user counted."
    assert summaries, "the model was asked to summarize"
    assert "count 0" in summaries[0]["messages"][1]["content"]
    last = [r for r in fake_openai.requests if r not in summaries][-1]["messages"]
    assert any("SUMMARY: the user counted." in str(m["content"]) for m in last)
    assert "count 0" not in str(last)  # the oldest turn is only in the summary now
    assert last[-1]["content"].startswith("count 5")
    prompt_estimate = fake_openai.prompt_tokens({"messages": last})
    assert prompt_estimate <= 400 - 64 + 20


def test_a_context_length_error_never_reaches_the_user(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    post_update(client, telegram_bot, private_text_update("x" * 400))
    outbound(1, Author.ASSISTANT)
    fake_openai.context_limit = 60  # the history no longer fits, the question alone does

    post_update(client, telegram_bot, private_text_update("short one"))

    answers = outbound(2, Author.ASSISTANT)
    assert answers[-1].text == fake_openai.reply
    assert "context_length" in [a["kind"] for a in answers[-1].attempts]
    assert not any("context" in text.lower() for text in shown(fake_telegram))


def test_images_go_to_vision_profiles_as_data_urls(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    update_profile(telegram_bot.profile, accepts_images=True)
    fake_telegram.add_file("photo-large", b"\xff\xd8\xff fake jpeg", "photos/file_1.jpg")

    post_update(client, telegram_bot, photo_update("what is this?"))

    outbound(1, Author.ASSISTANT)
    content = fake_openai.requests[0]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "what is this?"}
    assert content[1]["image_url"]["url"] == "data:image/jpeg;base64,/9j/IGZha2UganBlZw=="
    attachment = MessageAttachment.objects.get()
    assert attachment.content.read() == b"\xff\xd8\xff fake jpeg"


def test_images_to_a_text_only_profile_get_a_clear_reply(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    fake_telegram.add_file("photo-large", b"\xff\xd8\xff fake jpeg", "photos/file_1.jpg")

    post_update(client, telegram_bot, photo_update())

    [reply] = outbound(1, Author.SYSTEM)
    assert reply.text == turn_inputs.NO_IMAGES_REPLY
    assert fake_openai.requests == []


def test_voice_is_transcribed_and_answered_as_text(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    update_profile(telegram_bot.profile, transcription_model="whisper-1")
    fake_telegram.add_file("voice-1", b"OggS fake opus", "voice/file_2.oga")
    fake_openai.transcript = "what is the weather"

    post_update(client, telegram_bot, voice_update())

    outbound(1, Author.ASSISTANT)
    assert fake_openai.transcriptions[0]["model"] == "whisper-1"
    assert fake_openai.transcriptions[0]["file"] == b"OggS fake opus"
    assert fake_openai.requests[0]["messages"][-1] == {
        "role": "user",
        "content": "what is the weather",
    }


def test_voice_without_a_transcription_model_gets_a_clear_reply(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    fake_telegram.add_file("voice-1", b"OggS fake opus", "voice/file_2.oga")

    post_update(client, telegram_bot, voice_update())

    [reply] = outbound(1, Author.SYSTEM)
    assert reply.text == turn_inputs.NO_VOICE_REPLY
    assert fake_openai.requests == [] and fake_openai.transcriptions == []


def test_a_failed_delivery_is_sent_again_on_retry(
    client, worker, telegram_bot, fake_telegram, fake_openai, staff_user
):
    # Every send is refused for good (a streaming send, if the answer streamed, and the
    # final one) until the chat is back.
    fake_telegram.fail("sendMessage", 400, times=5, description="Bad Request: chat not found")
    post_update(client, telegram_bot, private_text_update("hello"))
    failed = wait_for(
        lambda: Message.objects.filter(
            direction=Direction.OUT, status=MessageStatus.FAILED, author=Author.ASSISTANT
        ).first()
    )
    assert failed.error.startswith("delivery failed") and failed.text == fake_openai.reply
    with fake_telegram.lock:
        fake_telegram.faults.clear()

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")
    url = f"/api/v1/conversations/{failed.conversation_id}/messages/{failed.pk}/retry/"
    assert api.post(url).status_code == 202

    [answer] = outbound(1, Author.ASSISTANT)
    assert answer.pk == failed.pk
    assert shown(fake_telegram) == [fake_openai.reply]
    assert len(fake_openai.requests) == 1  # the answer was sent again, not regenerated
