"""A new operator's first hour, in a real browser, in English and in Chinese.

Log in; the admin's home page; add a provider (its key checked against the fake OpenAI
server), a model profile, a Telegram bot (a token Telegram refuses first, then the right
one, checked against the fake Bot API) and a web-chat bot; chat in the web chat; see the
conversation in the console. Screenshots of every page go to test-artifacts/operator/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from apps.bots.models import Bot
from apps.conversations.models import Conversation
from apps.providers.models import ModelProfile, Provider
from tests.browser.conftest import admin_login

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
    shots = ARTIFACTS / language
    shots.mkdir(parents=True, exist_ok=True)
    number = iter(range(1, 100))

    def shot(page, name: str) -> None:
        page.screenshot(path=shots / f"{next(number):02d}-{name}.png", full_page=True)

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
    page.wait_for_url("**/admin/providers/provider/")
    page.click(".object-tools a.addlink")
    page.fill("#id_name", "OpenAI")
    page.fill("#id_base_url", fake_openai.base_url)
    page.fill("#id_api_key", "sk-operator-key-1234")
    shot(page, "provider-add")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    shot(page, "provider-saved")
    provider = Provider.objects.get()
    assert provider.api_key == "sk-operator-key-1234"
    assert fake_openai.model_list_requests[-1]["authorization"] == "Bearer sk-operator-key-1234"

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
