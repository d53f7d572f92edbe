"""A new operator's first hour, in a real browser, in English and in Chinese.

Log in; the admin's home page; add a provider (its key checked against the fake OpenAI
server), a model profile, a Telegram bot (a token Telegram refuses first, then the right
one, checked against the fake Bot API) and a web-chat bot; chat in the web chat; see the
conversation in the console. Then the same path as `make run` starts it: its set-up and
banner, the banner's admin password, and the bundled local model (llama.cpp serving
SmolLM2) answering the web chat's first message. Screenshots of every page go to
test-artifacts/operator/ and test-artifacts/operator-local/.
"""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command

from apps.bots.choices import Platform
from apps.bots.models import Bot
from apps.conversations.choices import Direction, MessageStatus
from apps.conversations.models import Conversation, Message
from apps.core import first_admin
from apps.core.management.commands import announce_ready
from apps.providers.local import LOCAL_MODEL_ALIAS
from apps.providers.models import ModelProfile, Provider
from tests.browser.conftest import admin_login
from tests.local_model import skip_without_llama_cpp

pytestmark = pytest.mark.browser

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "operator"

TEXTS = {
    "en": {
        "site": "Assistant administration",
        "inbound": "Messages in today",
        "refused": "Telegram refused this token",
        "online": "Online",
        "no_bots": "No bots yet.",
    },
    "zh-hans": {
        "site": "助手管理后台",
        "inbound": "今日收到消息",
        "refused": "Telegram 拒绝了这个 Token",
        "online": "在线",
        "no_bots": "还没有机器人。",
    },
}


def screenshots(folder: Path):
    """`shot(page, name)`: a numbered full-page screenshot in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    number = iter(range(1, 100))

    def shot(page, name: str) -> None:
        page.screenshot(path=folder / f"{next(number):02d}-{name}.png", full_page=True)

    return shot


@pytest.fixture
def localized_page(browser, live_server_url):
    contexts = []

    def open_page(locale: str):
        context = browser.new_context(
            base_url=live_server_url, locale=locale, viewport={"width": 1280, "height": 800}
        )
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.mark.parametrize(("locale", "language"), [("en-US", "en"), ("zh-CN", "zh-hans")])
def test_a_new_operator_sets_up_bots_and_chats(
    staff_user, worker, fake_openai, fake_telegram, localized_page, locale, language
):
    texts = TEXTS[language]
    shot = screenshots(ARTIFACTS / language)
    fake_openai.api_keys = {"sk-operator-key-1234"}
    fake_openai.reply = "Hello! How can I help?" if language == "en" else "你好！有什么可以帮您？"
    fake_telegram.valid_tokens = {"123456:TEST-token"}
    page = localized_page(locale)

    # Log in: the admin's home page, in the browser's language, with nothing set up yet.
    page.goto("/admin/")
    shot(page, "login")
    admin_login(page, staff_user.username, "staff-password-1", next_path="/admin/")
    assert page.locator("#site-name").inner_text() == texts["site"]
    assert page.locator("html").get_attribute("lang") == language
    assert page.locator("#card-inbound .label").text_content() == texts["inbound"]
    assert texts["no_bots"] in page.locator("#overview-bots").inner_text()
    shot(page, "admin-home-empty")

    # A provider: the fake OpenAI server, with the key it accepts.
    page.click("#card-providers .value a")
    provider = provider_add(page, shot, fake_openai)

    # A model profile on it (the provider is picked in the autocomplete box).
    page.goto("/admin/providers/modelprofile/add/")
    page.fill("#id_name", "Chat")
    page.click("#id_provider + .select2 .select2-selection")
    page.fill(".select2-search__field", "Open")
    page.click(".select2-results__option:has-text('OpenAI')")
    page.fill("#id_model", "gpt-4o-mini")
    shot(page, "profile-add")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    profile = ModelProfile.objects.get()
    assert profile.provider == provider

    # A Telegram bot: the add page shows only Telegram's fields once Telegram is chosen.
    telegram_bot = telegram_bot_add(page, shot, texts, fake_telegram, profile=profile)
    page.goto(f"/admin/bots/bot/{telegram_bot.pk}/change/")
    assert page.locator("#id_telegram_token").is_visible()
    assert page.locator("#id_feishu_app_id").count() == 0
    shot(page, "telegram-bot-change")

    # A web-chat bot: no Telegram or Feishu fields at all.
    page.goto("/admin/bots/bot/add/")
    page.fill("#id_name", "Website")
    page.select_option("#id_platform", "web")
    for hidden in ("#id_telegram_token", "#id_feishu_app_id", "#id_connection_mode"):
        assert not page.locator(hidden).is_visible()
    page.select_option("#id_profile", str(profile.pk))
    shot(page, "web-bot-add")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    web_bot = Bot.objects.get(name="Website")

    # The home page now shows both bots.
    page.goto("/admin/")
    assert page.locator(f"tr[data-bot='{web_bot.pk}']").count() == 1
    assert page.locator(f"tr[data-bot='{telegram_bot.pk}']").count() == 1
    shot(page, "admin-home")

    # Chat in the web chat: answered on the first try.
    page.click(f"tr[data-bot='{web_bot.pk}'] .connection a")
    page.wait_for_url(f"**/chat/{web_bot.pk}/")
    page.wait_for_selector(f"#state:text('{texts['online']}')")
    page.fill("#text", "hello" if language == "en" else "你好")
    page.keyboard.press("Enter")
    answer = page.locator(".msg--assistant[data-status='delivered']")
    answer.wait_for()
    assert fake_openai.reply in answer.inner_text()
    assert len(fake_openai.chat_requests()) == 1  # the first call answered
    shot(page, "web-chat")

    # The console lists the conversation and shows it.
    conversation = Conversation.objects.get(bot=web_bot)
    page.goto("/console/")
    row = page.locator(f"#conversations tr[data-id='{conversation.pk}']")
    row.wait_for()
    assert web_bot.name in row.inner_text()
    shot(page, "console")
    row.locator("a").first.click()
    page.wait_for_selector(f"text={fake_openai.reply}")
    shot(page, "console-conversation")

    # Today's traffic on the admin's home page.
    page.goto("/admin/")
    assert page.locator("#card-inbound .value").inner_text() == "1"
    assert page.locator("#card-answers .value").inner_text() == "1"
    shot(page, "admin-home-traffic")


@pytest.mark.local_model
@pytest.mark.parametrize(("locale", "language"), [("en-US", "en"), ("zh-CN", "zh-hans")])
def test_make_runs_banner_then_the_bundled_model_answers_the_first_message(
    live_server_url,
    worker,
    local_model_url,
    fake_openai,
    fake_telegram,
    localized_page,
    settings,
    monkeypatch,
    tmp_path,
    locale,
    language,
):
    skip_without_llama_cpp()
    texts = TEXTS[language]
    shot = screenshots(Path(ARTIFACTS.parent, "operator-local", language))
    fake_openai.api_keys = {"sk-operator-key-1234"}
    fake_telegram.valid_tokens = {"123456:TEST-token"}

    # `make run`: its set-up (first admin, the local model's provider, profile and web
    # bot), with the model served where `run_local_model` serves it, then its banner.
    model = urlsplit(local_model_url)
    settings.LOCAL_MODEL_HOST, settings.LOCAL_MODEL_PORT = model.hostname, model.port
    password_file = tmp_path / ".admin-password"
    monkeypatch.setattr(first_admin, "ADMIN_PASSWORD_FILE", password_file)
    monkeypatch.setattr(announce_ready, "ADMIN_PASSWORD_FILE", password_file)
    call_command("setup_platform", stdout=StringIO())
    out = StringIO()
    web_port = urlsplit(live_server_url).port
    call_command("announce_ready", "--web-port", str(web_port), "--once", stdout=out)
    banner = out.getvalue()
    urls = re.findall(r"http://127\.0\.0\.1:\d+/\S*", banner)
    admin_url = next(url for url in urls if url.endswith("/admin/"))
    chat_url = next(url for url in urls if "/chat/" in url)
    assert "Admin user: admin" in banner and password_file.name in banner
    password = password_file.read_text().strip()

    # Log in with what the banner says.
    page = localized_page(locale)
    page.goto(admin_url)
    shot(page, "login")
    admin_login(page, "admin", password, next_path=urlsplit(admin_url).path)
    assert page.locator("#site-name").inner_text() == texts["site"]
    shot(page, "admin-home")

    # A provider and a Telegram bot through the admin; the bot answers with the local model.
    page.click("#card-providers .value a")
    provider_add(page, shot, fake_openai)
    local_profile = ModelProfile.objects.get(model=LOCAL_MODEL_ALIAS)
    telegram_bot_add(page, shot, texts, fake_telegram, profile=local_profile)

    # The banner's web chat: the bundled model answers the very first message.
    web_bot = Bot.objects.get(platform=Platform.WEB)
    assert chat_url.endswith(f"/chat/{web_bot.pk}/")
    page.goto(chat_url)
    page.wait_for_selector(f"#state:text('{texts['online']}')")
    page.fill("#text", "hello" if language == "en" else "你好")
    page.keyboard.press("Enter")
    answer = page.locator(".msg--assistant[data-status='delivered']")
    answer.wait_for(timeout=180_000)  # a CPU model on a shared two-core machine
    shot(page, "web-chat")
    assert answer.inner_text().strip()
    outbound = Message.objects.filter(bot=web_bot, direction=Direction.OUT)
    assert [(m.status, m.profile_id) for m in outbound] == [
        (MessageStatus.DELIVERED, local_profile.pk)
    ]  # the first try answered: no failed or retried answer before it

    # The console lists the conversation and shows the answer.
    conversation = Conversation.objects.get(bot=web_bot)
    page.goto("/console/")
    row = page.locator(f"#conversations tr[data-id='{conversation.pk}']")
    row.wait_for()
    shot(page, "console")
    row.locator("a").first.click()
    page.get_by_text(outbound.get().text.strip()[:20]).first.wait_for()
    shot(page, "console-conversation")


def provider_add(page, shot, fake_openai) -> Provider:
    """Add a provider for the fake OpenAI server from the providers' list; its key is checked."""
    page.wait_for_url("**/admin/providers/provider/")
    page.click(".object-tools a.addlink")
    page.fill("#id_name", "OpenAI")
    page.fill("#id_base_url", fake_openai.base_url)
    page.fill("#id_api_key", "sk-operator-key-1234")
    shot(page, "provider-add")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    shot(page, "provider-saved")
    provider = Provider.objects.get(name="OpenAI")
    assert provider.api_key == "sk-operator-key-1234"
    assert fake_openai.model_list_requests[-1]["authorization"] == "Bearer sk-operator-key-1234"
    return provider


def telegram_bot_add(page, shot, texts, fake_telegram, *, profile) -> Bot:
    """Add a Telegram bot: a token Telegram refuses first, then the right one."""
    page.goto("/admin/bots/bot/add/")
    page.fill("#id_name", "Support")
    page.select_option("#id_platform", "telegram")
    assert page.locator("#id_telegram_token").is_visible()
    assert not page.locator("#id_feishu_app_id").is_visible()
    page.select_option("#id_profile", str(profile.pk))
    page.fill("#id_api_base_url", fake_telegram.url)
    page.fill("#id_telegram_token", "not-a-token")
    shot(page, "telegram-bot-add")
    page.click("input[name=_save]")
    error = page.locator(".field-telegram_token .errorlist")
    error.wait_for()
    assert texts["refused"] in error.inner_text()
    assert not page.locator("#id_save_anyway").is_visible()  # a refusal cannot be saved anyway
    assert not page.locator("#id_feishu_app_id").is_visible()
    shot(page, "telegram-bot-refused")
    page.fill("#id_telegram_token", "123456:TEST-token")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    shot(page, "bots-list")
    telegram_bot = Bot.objects.get(name="Support")
    assert telegram_bot.platform_username == fake_telegram.bot_username
    assert [call.token for call in fake_telegram.sent("getMe")] == [
        "not-a-token",
        "123456:TEST-token",
    ]
    return telegram_bot
