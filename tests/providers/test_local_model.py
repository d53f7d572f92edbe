"""Once against the real local model (llama.cpp serving SmolLM2-135M): the Telegram path,
streaming with usage, and a compaction pass."""

import pytest

from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Conversation, Message
from apps.providers.client import ChatMessage, stream_reply
from apps.providers.local import LOCAL_MODEL_ALIAS, local_model_path
from apps.providers.models import ModelProfile
from tests.factories import make_profile, make_provider, make_telegram_bot
from tests.fakes.server import wait_for
from tests.local_model import skip_without_llama_cpp
from tests.telegram_updates import post_update, private_text_update

pytestmark = pytest.mark.local_model

skip_without_llama_cpp()


def test_the_bundled_profile_gives_a_cold_cpu_model_time(transactional_db):
    from apps.providers.local import local_model_provision

    provider, profile = local_model_provision()

    assert profile.model == LOCAL_MODEL_ALIAS and provider.base_url.endswith("/v1")
    assert profile.first_token_timeout >= 30 and profile.stall_timeout >= 30


def test_model_file_ships_in_the_package():
    path = local_model_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000


def test_telegram_update_is_answered_by_smollm2(client, worker, fake_telegram, local_model_url):
    provider = make_provider(base_url=local_model_url, api_key="", request_timeout=120)
    profile = make_profile(
        provider=provider,
        model=LOCAL_MODEL_ALIAS,
        max_tokens=48,
        temperature=0.0,
        system_prompt="You are a helpful assistant.",
    )
    bot = make_telegram_bot(profile=profile, api_base_url=fake_telegram.url)

    assert (
        post_update(client, bot, private_text_update("What is the capital of France?")).status_code
        == 200
    )

    sent = wait_for(lambda: fake_telegram.sent("sendMessage"), timeout=180)
    assert sent[0].params["text"].strip()


@pytest.fixture
def local_profile(local_model_url, transactional_db):
    provider = make_provider(base_url=local_model_url, api_key="", request_timeout=120)
    return make_profile(
        provider=provider,
        model=LOCAL_MODEL_ALIAS,
        max_tokens=32,
        temperature=0.0,
        system_prompt="You are a helpful assistant. Answer briefly.",
        first_token_timeout=60,
        stall_timeout=60,
    )


def test_smollm2_streams_and_reports_usage(local_profile):
    deltas: list[str] = []

    reply = stream_reply(
        profile=local_profile,
        messages=[ChatMessage("user", "Name three colours.")],
        on_delta=deltas.append,
    )

    assert len(deltas) > 1  # streamed piece by piece
    assert "".join(deltas) == reply.text and reply.text.strip()
    # The client asks for usage in the stream (stream_options.include_usage). The
    # llama-cpp-python server sends none, so the counts are estimated and marked so.
    usage = reply.usage
    assert usage.prompt_tokens > 5 and usage.completion_tokens > 0
    if usage.estimated:
        assert usage.completion_tokens <= 32 * 2  # an estimate near the 32-token cap
    else:
        assert usage.completion_tokens <= 32
    assert reply.first_token_seconds is not None and not reply.interrupted


def test_smollm2_compacts_a_long_conversation(client, worker, fake_telegram, local_profile):
    ModelProfile.objects.filter(pk=local_profile.pk).update(context_budget=400)
    bot = make_telegram_bot(profile=local_profile, api_base_url=fake_telegram.url)
    conversation = Conversation.objects.create(bot=bot, chat_id="4242", chat_type="private")
    for number in range(6):
        Message.objects.create(
            conversation=conversation,
            bot=bot,
            direction=Direction.IN,
            author=Author.USER,
            sender_id="4242",
            text=f"My pet number {number} is a cat called Tom{number}. " * 4,
            status=MessageStatus.ANSWERED,
        )
        Message.objects.create(
            conversation=conversation,
            bot=bot,
            direction=Direction.OUT,
            author=Author.ASSISTANT,
            text=f"Nice, Tom{number} sounds lovely. " * 4,
            status=MessageStatus.DELIVERED,
        )

    post_update(client, bot, private_text_update("What are my pets called?"))

    wait_for(lambda: fake_telegram.sent("sendMessage"), timeout=180)
    conversation.refresh_from_db()
    assert conversation.summary.strip(), "SmolLM2 wrote a summary of the older turns"
    oldest = conversation.messages.order_by("id").first()
    assert conversation.summary_until is not None and conversation.summary_until >= oldest.pk
    answer = wait_for(
        lambda: Message.objects.filter(
            conversation=conversation,
            direction=Direction.OUT,
            status=MessageStatus.DELIVERED,
            reply_to__isnull=False,
        ).first(),
        timeout=180,
    )
    assert answer.text.strip() and answer.prompt_tokens
    # The answer's prompt held the summary and fewer than all twelve earlier messages.
    assert answer.prompt_tokens < 400
