"""The pages a new operator meets first, in a real browser: `/` and where it leads."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.browser.conftest import admin_login
from tests.factories import make_web_bot

pytestmark = pytest.mark.browser


def test_the_landing_page_links_admin_console_web_chat_and_docs(
    web_bot, new_page, live_server_url, caplog
):
    make_web_bot(profile=None, name="Switched off", enabled=False)
    page = new_page()

    response = page.goto("/")

    assert response.status == 200
    assert page.locator("#link-admin a").get_attribute("href") == "/admin/"
    assert page.locator("#link-console a").get_attribute("href") == "/console/"
    assert page.locator("#link-docs a").get_attribute("href") == "/api/docs/"
    chats = page.locator("#link-web-chat a")
    assert chats.all_inner_texts() == [web_bot.name]  # the disabled bot is not offered

    chats.first.click()
    page.wait_for_url(f"**/chat/{web_bot.pk}/")
    page.wait_for_selector("#state:text('Online')")

    page.goto("/")
    page.click("#link-console a")
    page.wait_for_url("**/admin/login/?next=/console/")

    favicon = httpx.get(f"{live_server_url}/favicon.ico")
    assert favicon.status_code == 200
    assert favicon.headers["content-type"] == "image/svg+xml"
    assert favicon.content.startswith(b"<svg")
    # Nothing on the way was missing (Django logs "Not Found: <path>" as a warning).
    missing = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [m for m in missing if "Not Found" in m] == []


def test_staff_log_out_of_the_console(staff_user, new_page, live_server_url):
    page = new_page()
    admin_login(page, staff_user.username, "staff-password-1")
    page.wait_for_selector("#live-state:text('Live')")

    page.click("#logout")

    page.wait_for_url(f"{live_server_url}/")  # back on the landing page
    assert page.locator("#link-console").count() == 1
    # The session is gone: the console asks for a login again.
    page.goto("/console/")
    page.wait_for_url("**/admin/login/?next=/console/")
