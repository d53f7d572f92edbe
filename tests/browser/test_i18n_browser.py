"""The console and the web chat in Chinese and in English, in a real browser.

Screenshots of each page in each language go to test-artifacts/i18n/ for review.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from tests.browser.conftest import admin_login

pytestmark = pytest.mark.browser

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "i18n"


@pytest.fixture
def localized_page(browser, live_server_url):
    """A fresh browser context whose language is `locale` (navigator and Accept-Language)."""
    contexts = []

    def open_page(locale: str):
        context = browser.new_context(base_url=live_server_url, locale=locale)
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context.new_page()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield open_page
    for context in contexts:
        context.close()


def test_web_chat_in_chinese_then_switched_to_english(web_bot, worker, fake_openai, localized_page):
    fake_openai.reply = "你好！有什么可以帮您？"
    page = localized_page("zh-CN")
    page.goto(f"/chat/{web_bot.pk}/")

    # Strings from the template and from the script (JavaScriptCatalog) are Chinese.
    page.wait_for_selector("#state:text('在线')")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.locator("#send").inner_text() == "发送"
    assert page.locator("#text").get_attribute("placeholder").startswith("输入消息…")
    page.fill("#text", "你好")
    page.keyboard.press("Enter")
    answer = page.locator(".msg--assistant[data-status='delivered']")
    answer.wait_for()
    assert answer.locator("[data-rating='helpful']").get_attribute("title") == "有帮助"
    assert answer.locator("[data-action='regenerate']").get_attribute("title") == "重新回答"
    page.screenshot(path=ARTIFACTS / "webchat-zh-hans.png", full_page=True)

    page.select_option("#language-select", "en")
    page.wait_for_selector("#state:text('Online')")
    assert page.locator("#send").inner_text() == "Send"
    assert page.locator("html").get_attribute("lang") == "en"
    # The conversation is still there, its buttons now in English.
    answer.wait_for()
    assert answer.locator("[data-rating='helpful']").get_attribute("title") == "Helpful"
    page.screenshot(path=ARTIFACTS / "webchat-en.png", full_page=True)


@pytest.mark.parametrize(
    ("locale", "language", "texts"),
    [
        (
            "zh-CN",
            "zh-hans",
            {"heading": "实时会话", "live": "实时", "dashboard": "仪表盘", "history": "历史记录"},
        ),
        (
            "en-US",
            "en",
            {
                "heading": "Live conversations",
                "live": "Live",
                "dashboard": "Dashboard",
                "history": "History",
            },
        ),
    ],
)
def test_console_follows_the_browser_language(
    staff_user, worker, localized_page, locale, language, texts
):
    page = localized_page(locale)
    admin_login(page, staff_user.username, "staff-password-1")

    assert page.locator("h1").inner_text() == texts["heading"]
    page.wait_for_selector(f"#live-state:text('{texts['live']}')")  # set by live.js
    assert page.locator("html").get_attribute("lang") == language
    assert page.locator("#language-select").input_value() == language
    page.screenshot(path=ARTIFACTS / f"console-live-{language}.png", full_page=True)

    page.click(f".top__nav a:text('{texts['dashboard']}')")
    page.wait_for_selector(f"h1:has-text('{texts['dashboard']}')")
    page.screenshot(path=ARTIFACTS / f"console-dashboard-{language}.png", full_page=True)

    page.click(f".top__nav a:text('{texts['history']}')")
    page.wait_for_selector(f"h1:text('{texts['history']}')")
    page.screenshot(path=ARTIFACTS / f"console-history-{language}.png", full_page=True)


def test_admin_language_switch(staff_user, localized_page):
    page = localized_page("en-US")
    admin_login(page, staff_user.username, "staff-password-1", next_path="/admin/")
    assert page.locator("#site-name").inner_text() == "Assistant administration"

    page.select_option("#language-select", "zh-hans")
    page.wait_for_selector("#site-name:has-text('助手管理后台')")
    assert page.locator("caption:has-text('机器人')").count() >= 1  # the Bots app's models
    page.screenshot(path=ARTIFACTS / "admin-zh-hans.png", full_page=True)
