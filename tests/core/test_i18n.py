"""zh-Hans and English: the catalogues, the pages' language, and the bots' reply language."""

from __future__ import annotations

import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from apps.bots.choices import ReplyLanguage
from apps.bots.services import bot_update
from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Message
from apps.core.i18n import language_detect
from tests.fakes.server import wait_for
from tests.telegram_updates import post_update, private_text_update

ROOT = Path(settings.BASE_DIR)
LOCALE = ROOT / "locale"
CATALOGUES = [f"{language}/LC_MESSAGES/{domain}" for language in ("zh_Hans", "en")
              for domain in ("django", "djangojs")]  # fmt: skip
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "staticfiles", "media",
    "test-artifacts", "logs", "db.sqlite3*", "*.mo",
)  # fmt: skip


def _need_gettext() -> None:
    # CI installs gettext (.ci/run); a developer without it is told how to get it.
    if not shutil.which("msgfmt") or not shutil.which("xgettext"):
        pytest.fail("GNU gettext is needed to check the catalogues: apt-get install gettext")


def _statistics(po: Path) -> str:
    run = subprocess.run(  # noqa: S603
        ["msgfmt", "--check", "--statistics", "-o", os.devnull, str(po)],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stderr.strip()


def _without_date(po: Path) -> str:
    # makemessages stamps the time into the header whenever it rewrites a catalogue.
    return re.sub(r'^"POT-Creation-Date: .*\n', "", po.read_text(), flags=re.MULTILINE)


def _catalog(mo: Path) -> dict:
    with mo.open("rb") as file:
        return gettext.GNUTranslations(file)._catalog


# Catalogues -------------------------------------------------------------------------


@pytest.mark.parametrize("catalogue", CATALOGUES)
def test_catalogue_is_complete_with_nothing_untranslated_or_fuzzy(catalogue):
    _need_gettext()
    statistics = _statistics(LOCALE / f"{catalogue}.po")
    assert re.fullmatch(r"\d+ translated messages?\.", statistics), statistics


def test_catalogues_are_in_sync_with_the_code_and_compiled(tmp_path):
    """scripts/messages.sh, run on a copy of the project, changes nothing committed."""
    _need_gettext()
    copy = tmp_path / "project"
    shutil.copytree(ROOT, copy, ignore=COPY_IGNORE)
    subprocess.run(  # noqa: S603
        ["bash", "scripts/messages.sh"],  # noqa: S607
        cwd=copy,
        env={**os.environ, "PYTHON": sys.executable},
        check=True,
    )
    for catalogue in CATALOGUES:
        ours, fresh = LOCALE / f"{catalogue}.po", copy / "locale" / f"{catalogue}.po"
        # New or changed strings in the code show up as differences here.
        assert _without_date(fresh) == _without_date(ours), (
            f"{catalogue}.po is out of date: run scripts/messages.sh, translate the new "
            "entries in locale/zh_Hans, run it again and commit locale/"
        )
        # The committed .mo is what the committed .po compiles to.
        assert _catalog(LOCALE / f"{catalogue}.mo") == _catalog(
            copy / "locale" / f"{catalogue}.mo"
        ), f"{catalogue}.mo is stale: run scripts/messages.sh and commit it"


def test_chinese_catalogue_keeps_the_placeholders_and_the_product_terms():
    translations = _catalog(LOCALE / "zh_Hans/LC_MESSAGES/django.mo")
    assert translations["model profile"] == "模型配置"
    assert translations["model provider"] == "模型服务商"
    assert translations["conversation"] == "会话"
    assert translations["Take over"] == "人工接管"
    assert translations["Console"] == "控制台"
    assert translations["audit event"] == "审计事件"
    for msgid, msgstr in translations.items():
        source = msgid[0] if isinstance(msgid, tuple) else msgid
        placeholders = sorted(re.findall(r"%\(\w+\)[sd]|\{\w+\}", source))
        assert sorted(re.findall(r"%\(\w+\)[sd]|\{\w+\}", msgstr)) == placeholders, source


# Detecting a message's language -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("你好", "zh-hans"),
        ("帮我写一个 Python function", "zh-hans"),
        ("OK 好的，谢谢", "zh-hans"),
        ("hello there", "en"),
        ("ok", "en"),
        ("What does 你好 mean?", "en"),
        ("Bonjour, ça va ?", "en"),  # Latin script: English is the closest we have
        ("東京に行きたいです", None),  # Japanese: neither
        ("안녕하세요", None),
        ("/help", None),
        ("https://example.com/页面 👍 123", None),
        ("@assistant_bot 今天天气怎么样", "zh-hans"),
        ("", None),
    ],
)
def test_language_detect(text, language):
    assert language_detect(text) == language


# Pages follow the browser ---------------------------------------------------------------


def test_admin_login_follows_accept_language(client, db):
    url = reverse("admin:login")
    chinese = client.get(url, headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.8"})
    english = client.get(url, headers={"accept-language": "en-US,en;q=0.9"})

    assert '<html lang="zh-hans"' in chinese.text and "助手管理后台" in chinese.text
    assert 'id="language-switch"' in chinese.text
    assert "Assistant administration" in english.text and "助手管理后台" not in english.text


def test_the_login_protection_pages_of_django_axes_are_in_chinese_too(
    client, db, django_user_model
):
    admin = django_user_model.objects.create_superuser("root", password="root-password-1")
    client.force_login(admin)
    chinese = {"accept-language": "zh-CN,zh;q=0.9"}

    index = client.get("/admin/", headers=chinese).text
    attempts = client.get("/admin/axes/accessattempt/", headers=chinese).text

    assert "登录防护" in index and "登录尝试" in index and "登录日志" in index
    assert "Access attempts" not in index and "Axes" not in index
    assert "选择 登录尝试 来修改" in attempts and "access attempt" not in attempts.lower()


def test_console_and_web_chat_follow_accept_language_and_the_switch(client, staff_user, web_bot):
    client.force_login(staff_user)
    chinese = {"accept-language": "zh-CN,zh;q=0.9"}

    console = client.get(reverse("console"), headers=chinese)
    chat = client.get(reverse("web-chat", args=[web_bot.pk]), headers=chinese)
    assert "<h1>实时会话</h1>" in console.text and "退出登录" in console.text
    assert "输入消息…" in chat.text and 'id="language-switch"' in chat.text

    # The switch wins over the browser's language from then on.
    switched = client.post(
        reverse("set_language"), {"language": "en", "next": reverse("console")}, headers=chinese
    )
    assert switched.status_code == 302 and switched["Location"] == reverse("console")
    console = client.get(reverse("console"), headers=chinese)
    assert "<h1>Live conversations</h1>" in console.text and "实时会话" not in console.text


def test_scripts_get_their_strings_from_the_javascript_catalogue(client, db):
    catalogue = client.get(reverse("javascript-catalog"), headers={"accept-language": "zh-CN"})
    assert catalogue.status_code == 200
    assert '"Reconnecting\\u2026": "\\u6b63\\u5728\\u91cd\\u65b0\\u8fde\\u63a5\\u2026"' in (
        catalogue.text
    )  # "正在重新连接…"


def test_api_errors_follow_accept_language(client, staff_user, profile):
    client.force_login(staff_user)
    response = client.post(
        "/api/v1/bots/",
        {"name": "x", "platform": "web", "grup_trigger": "all"},
        content_type="application/json",
        headers={"accept-language": "zh-CN"},
    )
    assert response.status_code == 400
    assert response.json() == {"grup_trigger": ["未知字段。"]}


# The bots' own replies -------------------------------------------------------------------


def _replies(count: int) -> list[str]:
    def rows():
        found = list(
            Message.objects.filter(
                direction=Direction.OUT, author=Author.SYSTEM, status=MessageStatus.DELIVERED
            )
            .order_by("id")
            .values_list("text", flat=True)
        )
        return found if len(found) >= count else None

    return wait_for(rows, timeout=60)


def test_auto_reply_language_answers_each_user_in_their_language(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    # "/help" says nothing about its writer: the user's earlier message does.
    post_update(client, telegram_bot, private_text_update("你好，你是谁？", user_id=1))
    wait_for(lambda: Message.objects.filter(author=Author.ASSISTANT, status="delivered").first())
    post_update(client, telegram_bot, private_text_update("/help", user_id=1))
    [help_in_chinese] = _replies(1)
    assert help_in_chinese.startswith("你好！直接给我发消息，我就会回答。")

    post_update(client, telegram_bot, private_text_update("/model", user_id=2))
    [_, model_in_english] = _replies(2)  # nothing earlier in that chat: LANGUAGE_CODE
    assert model_in_english.startswith("Answers come from the profile ")


def test_fixed_reply_language_and_budget_refusal(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    bot_update(bot=telegram_bot, reply_language=ReplyLanguage.ZH_HANS, daily_token_budget=0)
    post_update(client, telegram_bot, private_text_update("Can you help me?"))

    [refusal] = _replies(1)
    assert refusal == "抱歉，此助手今天的用量已用完，请明天再试。"
    assert fake_openai.requests == []  # refused before any model call

    bot_update(bot=telegram_bot, reply_language=ReplyLanguage.AUTO)
    post_update(client, telegram_bot, private_text_update("Still nothing?"))
    [_, in_english] = _replies(2)
    assert (
        in_english
        == "Sorry, this assistant has used up its daily allowance. Please try again tomorrow."
    )


def test_pairing_notice_in_the_users_language_with_the_code(
    client, worker, telegram_bot, fake_telegram, fake_openai
):
    bot_update(bot=telegram_bot, access_policy="pairing")
    post_update(client, telegram_bot, private_text_update("我想用一下这个助手"))

    [notice] = _replies(1)
    code = telegram_bot.pairing_requests.get().code
    assert notice.startswith("此助手需要经过批准才能回答您。") and f"访问码是 {code}" in notice
