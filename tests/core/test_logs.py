"""JSON log lines: the fields, the context of a webhook call, secrets masked."""

from __future__ import annotations

import json
import logging
import runpy

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.core.logs import JsonFormatter, PlainFormatter, log_context
from tests.telegram_updates import private_text_update

TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
API_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"


def make_record(message: str, *args, level=logging.WARNING, exc_info=None) -> logging.LogRecord:
    return logging.getLogger("apps.test").makeRecord(
        "apps.test", level, __file__, 1, message, args, exc_info
    )


def test_a_json_line_has_the_fields_and_the_context():
    with log_context(bot="b-1", conversation=7, message=42, platform="telegram", request_id="r1"):
        record = make_record("answered %s in %.1fs", "conversation 7", 1.5)

    line = JsonFormatter().format(record)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry.pop("time").endswith("+00:00")
    assert entry == {
        "level": "WARNING",
        "logger": "apps.test",
        "message": "answered conversation 7 in 1.5s",
        "bot_id": "b-1",
        "conversation_id": "7",
        "message_id": "42",
        "platform": "telegram",
        "request_id": "r1",
    }


def test_context_ends_with_its_block_and_only_ids_are_accepted():
    with log_context(conversation=7):
        pass
    assert "conversation_id" not in json.loads(JsonFormatter().format(make_record("later")))
    with pytest.raises(TypeError), log_context(user_name="Ada"):
        pass


def test_secrets_are_masked_in_both_formats():
    try:
        raise ValueError(f"POST https://api.telegram.org/bot{TELEGRAM_TOKEN}/sendMessage failed")
    except ValueError as error:
        record = make_record(
            "provider said no: Authorization: Bearer %s, api_key=%s",
            API_KEY,
            "0123456789abcdef",
            exc_info=(type(error), error, error.__traceback__),
        )

    for line in (JsonFormatter().format(record), PlainFormatter("%(message)s").format(record)):
        assert TELEGRAM_TOKEN not in line
        assert API_KEY not in line and "0123456789abcdef" not in line
        assert "sk-…2345" in line and "012…cdef" in line  # masked, still recognisable
    entry = json.loads(JsonFormatter().format(record))
    assert "sendMessage failed" in entry["exc_info"] and "123…" in entry["exc_info"]


def test_a_webhook_call_logs_with_its_bot_platform_and_request_id(client, telegram_bot, caplog):
    update = private_text_update("hello")
    del update["message"]["chat"]  # authentic but unusable: kept, with a warning

    with caplog.at_level(logging.WARNING, logger="apps.bots.services"):
        response = client.post(
            f"/api/webhooks/telegram/{telegram_bot.pk}/",
            data=json.dumps(update),
            content_type="application/json",
            headers={
                "X-Telegram-Bot-Api-Secret-Token": telegram_bot.config["webhook_secret"],
                "X-Request-Id": "req-from-nginx-1",
            },
        )

    assert response.status_code == 200
    [record] = [r for r in caplog.records if "unprocessed" in r.getMessage()]
    entry = json.loads(JsonFormatter().format(record))
    assert entry["bot_id"] == str(telegram_bot.pk)
    assert entry["platform"] == "telegram"
    assert entry["request_id"] == "req-from-nginx-1"
    assert telegram_bot.config["token"] not in json.dumps(entry)


def test_log_format_json_switches_the_handler(monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "json")
    namespace = runpy.run_path(str(settings.BASE_DIR / "assistant" / "settings.py"))
    handler = namespace["LOGGING"]["handlers"]["console"]
    assert namespace["LOGGING"]["formatters"][handler["formatter"]]["()"] == (
        "apps.core.logs.JsonFormatter"
    )

    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT"):
        runpy.run_path(str(settings.BASE_DIR / "assistant" / "settings.py"))
