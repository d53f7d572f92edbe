"""The model client against loopback fake OpenAI servers, driven by the real openai SDK."""

from __future__ import annotations

import socket

import pytest

from apps.providers import client
from apps.providers.client import INTERRUPTED_NOTE, ChatMessage, ModelError, stream_reply
from apps.providers.selectors import provider_health
from apps.providers.services import provider_cooldown_clear
from tests.factories import make_profile, make_provider
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
def backup_openai():
    server = FakeOpenAI(reply="Backup here.").start()
    yield server
    server.stop()


@pytest.fixture
def chain(fake_openai, backup_openai, db):
    """A primary profile on `fake_openai` falling back to a profile on `backup_openai`."""
    backup = make_profile(provider=make_provider(base_url=backup_openai.base_url), name="backup")
    primary = make_profile(
        provider=make_provider(base_url=fake_openai.base_url, max_retries=0),
        name="primary",
        fallback=backup,
        first_token_timeout=2.0,
        stall_timeout=2.0,
    )
    return primary, backup


def ask(profile, text="hi", **kwargs):
    deltas: list[str] = []
    reply = stream_reply(
        profile=profile, messages=[ChatMessage("user", text)], on_delta=deltas.append, **kwargs
    )
    return reply, deltas


def outcomes(reply_or_error):
    return [(a["profile"], a["outcome"], a.get("kind", "")) for a in reply_or_error.attempts]


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, "server_error"),
        (503, "server_error"),
        (429, "rate_limited"),
        (401, "auth"),
        (403, "auth"),
    ],
)
def test_each_provider_failure_falls_back(chain, fake_openai, backup_openai, status, kind):
    primary, backup = chain
    fake_openai.fail(status)

    reply, deltas = ask(primary)

    assert reply.profile == backup
    assert reply.text == "Backup here." == "".join(deltas)
    assert outcomes(reply) == [("primary", "failed", kind), ("backup", "answered", "")]
    assert f"HTTP {status}" in reply.attempts[0]["reason"]
    assert len(fake_openai.requests) == 1 and len(backup_openai.requests) == 1


def test_connection_error_falls_back(backup_openai, db):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    backup = make_profile(provider=make_provider(base_url=backup_openai.base_url))
    primary = make_profile(
        provider=make_provider(base_url=f"http://127.0.0.1:{dead_port}/v1", max_retries=1),
        fallback=backup,
    )

    reply, _ = ask(primary)

    assert reply.profile == backup
    kinds = [(a["outcome"], a["kind"]) for a in reply.attempts]
    assert kinds == [("failed", "connection"), ("failed", "connection"), ("answered", "")]


def test_retryable_error_is_retried_on_the_same_provider_honouring_retry_after(fake_openai, db):
    profile = make_profile(provider=make_provider(base_url=fake_openai.base_url, max_retries=2))
    fake_openai.fail(429, retry_after=1)
    fake_openai.fail(503)

    reply, _ = ask(profile)

    assert reply.profile == profile and reply.text == fake_openai.reply
    assert len(fake_openai.requests) == 3
    assert [a["outcome"] for a in reply.attempts] == ["failed", "failed", "answered"]
    # The second request waited at least what Retry-After asked for.
    assert fake_openai.request_times[1] - fake_openai.request_times[0] >= 1.0
    assert "retrying" in reply.attempts[0]["reason"]


def test_non_retryable_error_is_not_retried(fake_openai, db):
    profile = make_profile(provider=make_provider(base_url=fake_openai.base_url, max_retries=3))
    fake_openai.fail(401)

    with pytest.raises(ModelError) as raised:
        ask(profile)

    assert len(fake_openai.requests) == 1
    assert raised.value.kind == "auth" and not raised.value.retryable
    assert outcomes(raised.value) == [(profile.name, "failed", "auth")]


def test_no_first_token_in_time_falls_back(chain, fake_openai, backup_openai):
    primary, backup = chain
    primary.first_token_timeout = 0.3
    fake_openai.first_token_delay = 5

    reply, deltas = ask(primary)

    assert reply.profile == backup and "".join(deltas) == "Backup here."
    assert outcomes(reply)[0] == ("primary", "failed", "first_token_timeout")


def test_stall_before_any_text_falls_back(chain, fake_openai, backup_openai):
    primary, backup = chain
    primary.first_token_timeout = 0.3
    fake_openai.stall_after_chunks = 0  # the role chunk arrives, then nothing

    reply, deltas = ask(primary)

    assert reply.profile == backup and "".join(deltas) == "Backup here."
    assert not reply.interrupted


def test_stall_after_text_ends_the_answer_with_a_note(chain, fake_openai, backup_openai):
    primary, _ = chain
    primary.stall_timeout = 0.3
    fake_openai.reply = "One two three four five six"
    fake_openai.stall_after_chunks = 2  # "One two " reaches the user, then nothing

    reply, deltas = ask(primary)

    assert reply.profile == primary and reply.interrupted
    assert reply.text.startswith("One two ") and reply.text.endswith(INTERRUPTED_NOTE)
    assert "".join(deltas) == reply.text
    assert backup_openai.requests == []  # the user saw text: no second answer
    assert outcomes(reply) == [("primary", "interrupted", "")]
    assert "stalled" in reply.attempts[0]["reason"]


def test_cooldown_after_consecutive_failures_is_shared_and_visible(
    chain, fake_openai, backup_openai
):
    primary, backup = chain
    provider = primary.provider
    provider.cooldown_after_failures = 2
    provider.cooldown_seconds = 60
    provider.save()
    fake_openai.fail(500, times=2)

    ask(primary)
    health = provider_health(provider=provider)
    assert health.consecutive_failures == 1 and health.cooldown_seconds_left == 0
    ask(primary)
    reply, _ = ask(primary)  # the primary is cooling down: not even asked

    assert len(fake_openai.requests) == 2
    assert reply.profile == backup
    assert outcomes(reply)[0] == ("primary", "skipped", "cooling_down")
    health = provider_health(provider=provider)
    assert 0 < health.cooldown_seconds_left <= 60
    assert "HTTP 500" in health.last_error and health.last_error_at is not None
    assert provider_health(provider=backup.provider).last_success_at is not None

    provider_cooldown_clear(provider=provider)
    reply, _ = ask(primary)
    assert reply.profile == primary and len(fake_openai.requests) == 3
    assert provider_health(provider=provider).last_success_at is not None


def test_every_profile_failing_raises_with_all_attempts(chain, fake_openai, backup_openai):
    primary, _ = chain
    fake_openai.fail(500)
    backup_openai.fail(502, times=3)

    with pytest.raises(ModelError) as raised:
        ask(primary)

    assert [a["profile"] for a in raised.value.attempts] == ["primary"] + ["backup"] * 3
    assert raised.value.retryable
    assert "HTTP 502" in str(raised.value)


def test_usage_from_the_stream_or_estimated_and_marked(fake_openai, db):
    profile = make_profile(provider=make_provider(base_url=fake_openai.base_url))
    fake_openai.reply = "a" * 40

    reported, _ = ask(profile)
    fake_openai.report_usage = False
    estimated, _ = ask(profile, text="x" * 400)

    assert (reported.usage.prompt_tokens, reported.usage.completion_tokens) == (11, 10)
    assert not reported.usage.estimated
    assert estimated.usage.estimated
    assert estimated.usage.completion_tokens == 10  # 40 characters, ~4 a token
    assert estimated.usage.prompt_tokens >= 100


def test_estimate_counts_wide_scripts_per_character():
    assert client.estimate_tokens("hello world!") == 3
    assert client.estimate_tokens("你好世界") == 4
    assert client.estimate_tokens("") == 0


def test_context_length_error_asks_for_a_smaller_prompt(fake_openai, db):
    profile = make_profile(provider=make_provider(base_url=fake_openai.base_url))
    fake_openai.context_limit = 40
    history = [ChatMessage("user", "x" * 200), ChatMessage("assistant", "y" * 200)]
    squeezes: list[int] = []

    def build(candidate, squeeze):
        squeezes.append(squeeze)
        kept = history[squeeze * 1 :] if squeeze < 2 else []
        return [*kept, ChatMessage("user", "short question")]

    reply = stream_reply(profile=profile, build=build, on_delta=lambda d: None)

    assert reply.text == fake_openai.reply
    assert squeezes == [0, 1, 2]
    assert [a["kind"] for a in reply.attempts[:2]] == ["context_length", "context_length"]
    assert fake_openai.requests[-1]["messages"] == [{"role": "user", "content": "short question"}]


def test_transcription_uses_the_profiles_model(fake_openai, db):
    profile = make_profile(
        provider=make_provider(base_url=fake_openai.base_url), transcription_model="whisper-1"
    )
    fake_openai.transcript = "what time is it"

    text = client.transcribe(profile=profile, audio=b"OggS-voice-bytes", file_name="v.ogg")

    assert text == "what time is it"
    assert fake_openai.transcriptions[0]["model"] == "whisper-1"
    assert fake_openai.transcriptions[0]["file"] == b"OggS-voice-bytes"


def test_images_are_sent_as_data_url_parts(fake_openai, db):
    profile = make_profile(provider=make_provider(base_url=fake_openai.base_url))
    content = [client.text_part("what is this?"), client.image_part(b"\x89PNG", "image/png")]

    stream_reply(profile=profile, messages=[ChatMessage("user", content)], on_delta=print)

    sent = fake_openai.requests[0]["messages"][0]["content"]
    assert sent[0] == {"type": "text", "text": "what is this?"}
    assert sent[1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}}


def test_backoff_grows_with_jitter_and_respects_retry_after(settings):
    settings.MODEL_RETRY_BASE_SECONDS = 1.0
    settings.MODEL_RETRY_MAX_SECONDS = 8.0
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)]:
        delays = [client.retry_delay(attempt=attempt, retry_after=None) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1  # jittered
    assert client.retry_delay(attempt=0, retry_after=5.0) == 5.0


def test_sdk_calls_spread_over_clients_of_bounded_pools(db):
    """The SDK's clients (transcriptions; model streams go over apps.providers.sse): no
    client carries over its share of calls at once."""
    from contextlib import ExitStack

    from apps.providers.client import STREAMS_PER_CLIENT, _clients_for

    provider = make_provider(base_url="http://127.0.0.1:9/v1")
    clients = _clients_for(provider)
    with ExitStack() as stack:
        leased = [stack.enter_context(clients.lease()) for _ in range(STREAMS_PER_CLIENT + 1)]
        assert len({id(client) for client in leased}) == 2
        assert max(clients.busy) == STREAMS_PER_CLIENT
    assert clients.busy == [0, 0]
    with clients.lease() as again:
        assert again in clients.clients  # idle clients are reused, not multiplied
    assert len(clients.clients) == 2


def test_provider_health_out_of_reach_loses_no_answer(
    chain, fake_openai, backup_openai, redis_unreachable, caplog
):
    # Redis restarting while turns stream: health is advice; the answers still come.
    primary, backup = chain

    reply, deltas = ask(primary)

    assert reply.text == fake_openai.reply == "".join(deltas)
    assert outcomes(reply) == [("primary", "answered", "")]

    fake_openai.fail(500)
    reply, deltas = ask(primary)

    assert reply.text == "Backup here." == "".join(deltas)
    assert outcomes(reply) == [("primary", "failed", "server_error"), ("backup", "answered", "")]
    said = [r.getMessage() for r in caplog.records if r.name == "apps.providers.services"]
    assert any(m.startswith("could not note a success of provider") for m in said)
    assert any(m.startswith("could not count a failure of provider") for m in said)
