"""JSON log lines: the fields, the context of a webhook call, secrets masked."""

from __future__ import annotations

import json
import logging
import runpy

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.core.logs import JsonFormatter, Occasional, PlainFormatter, log_context
from tests.redis_server import RedisOutOfReach
from tests.telegram_updates import post_update, private_text_update

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


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_recurring_failure_is_said_once_per_interval_with_how_many_were_left_out(caplog):
    clock = Clock()
    occasional = Occasional(logging.getLogger("tests.occasional"), 10.0, clock=clock)
    caplog.set_level(logging.WARNING, logger="tests.occasional")

    for call in range(5):  # Redis away: every call fails
        occasional.warning("could not note call %s", call)
    clock.now += 10.5
    occasional.warning("could not note call %s", 5)
    occasional.warning("could not note call %s", 6)
    occasional.recovered()  # the call works again
    occasional.recovered()
    occasional.warning("could not note call %s", 7)  # a new failure: said at once

    assert [record.getMessage() for record in caplog.records] == [
        "could not note call 0",
        "could not note call 5 (and 4 more like it since the last said)",
        "could not note call 6 (and 1 more like it, until it worked again)",
        "could not note call 7",
    ]


def test_the_flood_check_says_once_that_redis_is_away_however_many_webhooks_come(
    client, telegram_bot, settings, caplog
):
    post_update(client, telegram_bot, private_text_update("hi", user_id=3000))  # Redis there
    out_of_reach = RedisOutOfReach(settings)
    try:
        for user_id in range(3001, 3006):
            response = post_update(client, telegram_bot, private_text_update("hi", user_id=user_id))
            assert response.status_code == 200
    finally:
        out_of_reach.restore()

    said = [r.getMessage() for r in caplog.records if r.name == "apps.guard.services"]
    assert len(said) == 1 and said[0].startswith("flood limits not checked (Redis unavailable)")
