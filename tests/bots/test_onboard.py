"""`manage.py onboard`: driven by flags and by scripted input, against the loopback fakes."""

from __future__ import annotations

import io
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from apps.audit.models import AuditEvent
from apps.bots.choices import ConnectionMode, Platform
from apps.bots.models import Bot
from apps.conversations.choices import Author, MessageStatus
from apps.conversations.models import Message
from apps.providers.models import ModelProfile, Provider
from tests import feishu_events, wecom_events
from tests.fakes.server import wait_for

fake_feishu = feishu_events.fake_feishu
fake_wecom = wecom_events.fake_wecom

GOOD_KEY = "sk-good-key-0001"


@pytest.fixture
def model(fake_openai):
    fake_openai.api_keys = {GOOD_KEY}
    fake_openai.reply = "Hello from the fake model."
    return fake_openai


def onboard(*args: str, stdin: str | None = None) -> str:
    out = io.StringIO()
    options = {"stdout": out, "stderr": io.StringIO()}
    if stdin is not None:
        options["stdin"] = io.StringIO(stdin)
    try:
        call_command("onboard", *args, **options)
    except CommandError as error:
        error.output = out.getvalue()
        raise
    return out.getvalue()


def provider_flags(model, *, key: str = GOOD_KEY) -> list[str]:
    return [
        "--provider-name", "Fake AI",
        "--base-url", model.base_url,
        "--api-key", key,
        "--model", "fake-model",
    ]  # fmt: skip


def test_non_interactive_telegram_webhook_creates_connects_and_sends_a_test_message(
    transactional_db, model, fake_telegram
):
    output = onboard(
        "--non-interactive", "--language", "en",
        *provider_flags(model),
        "--platform", "telegram",
        "--bot-name", "Support",
        "--telegram-token", "123456:TEST-token",
        "--api-base-url", fake_telegram.url,
        "--connection-mode", "webhook",
        "--webhook-url", "https://bots.example.com/hook",
        "--chat-id", "4242",
    )  # fmt: skip

    provider = Provider.objects.get(name="Fake AI")
    assert provider.api_key == GOOD_KEY
    assert model.model_list_requests  # the key was checked with the provider
    profile = ModelProfile.objects.get(provider=provider)
    assert (profile.name, profile.model) == ("fake-model", "fake-model")
    bot = Bot.objects.get(name="Support")
    assert (bot.platform, bot.profile, bot.connection_mode) == (
        Platform.TELEGRAM,
        profile,
        ConnectionMode.WEBHOOK,
    )
    assert bot.platform_username == "assistant_test_bot"  # learnt by the token check (getMe)
    assert fake_telegram.webhook["url"] == "https://bots.example.com/hook"
    assert fake_telegram.webhook["secret_token"] == bot.config["webhook_secret"]
    assert [command["command"] for command in fake_telegram.commands][:1] == ["start"]
    # One real turn through the profile, sent to the chat and recorded in its conversation.
    assert model.chat_requests()[-1]["model"] == "fake-model"
    [sent] = fake_telegram.chat(4242)
    assert "Hello from the fake model." in sent.text
    notice = Message.objects.get(bot=bot, author=Author.SYSTEM)
    assert notice.status == MessageStatus.DELIVERED
    assert notice.conversation.chat_id == "4242"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"provider.create", "modelprofile.create", "bot.create"} <= actions
    assert "Test message sent to chat 4242." in output
    assert "https://t.me/assistant_test_bot" in output


def test_non_interactive_refused_key_exits_non_zero_and_saves_nothing(transactional_db, model):
    with pytest.raises(CommandError) as raised:
        onboard(
            "--non-interactive", "--language", "en",
            *provider_flags(model, key="sk-wrong"),
            "--platform", "web",
        )  # fmt: skip

    assert "Could not create the model provider" in str(raised.value)
    assert "--api-key: The provider refused the API key (HTTP 401)" in raised.value.output
    assert "sk-wrong" not in raised.value.output
    assert not Provider.objects.exists()
    assert not AuditEvent.objects.exists()


def test_non_interactive_names_a_missing_flag(transactional_db, model):
    with pytest.raises(CommandError) as raised:
        onboard(
            "--non-interactive", "--language", "en",
            *provider_flags(model), "--platform", "telegram",
        )  # fmt: skip

    assert "--telegram-token is needed with --non-interactive" in str(raised.value)
    assert not Bot.objects.exists()


def test_unreachable_provider_is_saved_only_with_save_anyway(transactional_db, model):
    unreachable = ["--base-url", "http://127.0.0.1:9/v1"]
    flags = ["--non-interactive", "--language", "en", *provider_flags(model), *unreachable]
    with pytest.raises(CommandError) as raised:
        onboard(*flags, "--platform", "web")
    assert "--save-anyway" in str(raised.value)
    assert not Provider.objects.exists()

    # Saved unchecked; the test turn then fails, which the exit status says.
    with pytest.raises(CommandError) as raised:
        onboard(*flags, "--platform", "web", "--save-anyway")
    assert Provider.objects.get().base_url == "http://127.0.0.1:9/v1"
    assert "The model did not answer" in str(raised.value)


def test_interactive_web_chat_asks_again_after_a_refused_key(transactional_db, model):
    script = "\n".join(
        [
            "Fake AI",  # provider name
            model.base_url,
            "sk-wrong",  # refused: asked again
            GOOD_KEY,
            "fake-model",
            "",  # profile name: the model's
            "slack",  # not a platform: asked again
            "web",
            "Web helper",
            "",
        ]
    )

    output = onboard("--language", "en", stdin=script)

    assert output.count("Its API key (Enter for none, e.g. a local server): \n") == 2
    assert "sk-wrong" not in output
    assert "The provider refused the API key (HTTP 401)" in output
    assert "Answer one of: web, telegram, feishu, wecom." in output
    bot = Bot.objects.get(name="Web helper")
    assert bot.platform == Platform.WEB
    assert bot.profile.provider.api_key == GOOD_KEY
    assert f"/chat/{bot.pk}/" in output
    assert "The model answered: Hello from the fake model." in output


def test_interactive_telegram_persistent_asks_again_for_a_refused_token(
    transactional_db, model, fake_telegram
):
    fake_telegram.valid_tokens = {"123456:GOOD-token"}
    fake_telegram.webhook = {"url": "https://old.example.com/hook"}
    script = "\n".join(
        [
            "Fake AI", model.base_url, GOOD_KEY, "fake-model", "",
            "telegram", "Polling bot",
            "123456:BAD-token", fake_telegram.url, "persistent",  # refused by getMe
            "123456:GOOD-token",  # only the token is asked again
            "",
        ]
    )  # fmt: skip

    output = onboard("--language", "en", "--wait-seconds", "0", stdin=script)

    assert "Telegram refused this token" in output
    bot = Bot.objects.get(name="Polling bot")
    assert bot.config["token"] == "123456:GOOD-token"
    assert bot.connection_mode == ConnectionMode.PERSISTENT
    assert fake_telegram.webhook == {}  # dropped, so long polling can work
    assert "Telegram long polling prepared" in output
    assert "Not waiting for a first message" in output


def _run_in_thread(args: list[str]) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run():
        try:
            result["output"] = onboard(*args)
        except Exception as error:  # noqa: BLE001 - the test reports it
            result["error"] = error
            error.output = getattr(error, "output", "")
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_feishu_webhook_prints_the_console_settings_and_verifies_them_on_the_first_event(
    worker, client, model, fake_feishu
):
    thread, result = _run_in_thread(
        [
            "--non-interactive", "--language", "en",
            *provider_flags(model),
            "--platform", "feishu",
            "--bot-name", "Feishu helper",
            "--feishu-app-id", fake_feishu.app_id,
            "--feishu-app-secret", fake_feishu.app_secret,
            "--api-base-url", fake_feishu.url,
            "--connection-mode", "webhook",
            "--feishu-verification-token", feishu_events.VERIFICATION_TOKEN,
            "--feishu-encrypt-key", feishu_events.ENCRYPT_KEY,
            "--wait-seconds", "60",
        ]
    )  # fmt: skip
    wait_for(lambda: Bot.objects.filter(name="Feishu helper").exists() or not thread.is_alive())
    assert "error" not in result, (result["error"], result["error"].output)
    bot = Bot.objects.get(name="Feishu helper")

    event = feishu_events.message_event(
        token=feishu_events.VERIFICATION_TOKEN, text="hi", chat_id="oc_onboard"
    )
    assert feishu_events.post_event(client, bot, event).status_code == 200
    thread.join(60)

    assert "error" not in result, result.get("error")
    output = result["output"]
    assert f"/api/webhooks/feishu/{bot.pk}/" in output
    for setting in ("im.message.receive_v1", "card.action.trigger", "im:message", "im:resource"):
        assert setting in output
    assert "The first message arrived: “hi” (chat oc_onboard)." in output
    assert "the Verification Token and the Encrypt Key's signature match" in output
    assert "The scope im:message.p2p_msg:readonly is granted." in output
    assert "Test message sent to chat oc_onboard." in output
    test_cards = [card for card in fake_feishu.cards() if "Set-up test" in card.text]
    assert [card.chat_id for card in test_cards] == ["oc_onboard"]


def test_wecom_prints_the_console_settings_and_verifies_them_on_the_first_message(
    worker, client, model, fake_wecom
):
    thread, result = _run_in_thread(
        [
            "--non-interactive", "--language", "en",
            *provider_flags(model),
            "--platform", "wecom",
            "--bot-name", "WeCom helper",
            "--wecom-corp-id", fake_wecom.corp_id,
            "--wecom-agent-id", "1000002",
            "--wecom-secret", fake_wecom.secret,
            "--wecom-token", wecom_events.SAMPLE_TOKEN,
            "--wecom-encoding-aes-key", wecom_events.SAMPLE_AES_KEY,
            "--api-base-url", fake_wecom.url,
            "--webhook-url", "https://bots.example.com/wecom",
            "--wait-seconds", "60",
        ]
    )  # fmt: skip
    wait_for(lambda: Bot.objects.filter(name="WeCom helper").exists() or not thread.is_alive())
    assert "error" not in result, (result["error"], result["error"].output)
    bot = Bot.objects.get(name="WeCom helper")
    assert bot.config["agent_id"] == "1000002"
    assert fake_wecom.calls_of("token")  # the corp ID and secret were checked

    assert wecom_events.post_message(client, bot, wecom_events.TEXT).status_code == 200
    thread.join(60)

    assert "error" not in result, result.get("error")
    output = result["output"]
    assert "URL: https://bots.example.com/wecom" in output
    assert "Trusted IPs" in output and "EncodingAESKey" in output
    assert "The first message arrived: “this is a test” (chat fromUser)." in output
    assert "decrypted with your EncodingAESKey" in output
    assert "Test message sent to chat fromUser." in output
    assert any("Set-up test" in text for text in fake_wecom.texts())


def test_feishu_wait_without_an_event_says_what_to_check_and_exits_non_zero(
    transactional_db, model, fake_feishu
):
    with pytest.raises(CommandError) as raised:
        onboard(
            "--non-interactive", "--language", "en",
            *provider_flags(model),
            "--platform", "feishu",
            "--feishu-app-id", fake_feishu.app_id,
            "--feishu-app-secret", fake_feishu.app_secret,
            "--api-base-url", fake_feishu.url,
            "--connection-mode", "persistent",
            "--wait-seconds", "0.2",
        )  # fmt: skip

    assert "No message from the platform arrived." in str(raised.value)
    assert "Receive events through persistent connection" in raised.value.output
    assert "Nothing arrived within" in raised.value.output
    assert Bot.objects.get().connection_mode == ConnectionMode.PERSISTENT  # kept, to fix later


def test_the_wizard_speaks_chinese(transactional_db, model):
    output = onboard(
        "--non-interactive", "--language", "zh-hans", *provider_flags(model), "--platform", "web"
    )

    assert "网页聊天" in output
    assert "The model answered" not in output
    assert "模型回答" in output


def test_help_lists_every_platform_flag_in_the_shells_language(monkeypatch):
    from apps.bots.management.commands.onboard import Command

    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)

    help_text = Command().create_parser("manage.py", "onboard").format_help()

    for flag in ("--telegram-token", "--feishu-app-secret", "--feishu-encrypt-key", "--chat-id"):
        assert flag in help_text
    assert "$ONBOARD_TELEGRAM_TOKEN" in help_text
    assert "一步步配置" in help_text
