"""Personal data through the whole pipeline: webhook → ingest → worker → model → answer.

Logs never carry it, whatever the bot's settings; a bot that masks personal data never
stores it, exports it or sends it to the model.
"""

from __future__ import annotations

import json
import logging

from apps.conversations.choices import Direction, MessageStatus
from apps.conversations.models import Message
from apps.core.logs import JsonFormatter, PlainFormatter
from tests.fakes.server import wait_for
from tests.telegram_updates import post_update, private_text_update

PHONE = "13800138000"
PHONE_SPACED = "+86 138 0013 8000"
EMAIL = "zhang.wei@example.com.cn"
RESIDENT_ID = "11010519491231002X"
CARD = "6222021234567890128"
INTERNATIONAL = "+44 20 7946 0958"
RAW = [PHONE, "138 0013 8000", EMAIL, RESIDENT_ID, CARD, INTERNATIONAL, "7946 0958"]
TEXT = (
    f"我的手机是{PHONE}，也可以打{PHONE_SPACED}，邮箱 {EMAIL}，身份证{RESIDENT_ID}，"
    f"银行卡 {CARD}。London office: {INTERNATIONAL}. 订单号 202311231380013800123。"
)


def delivered_answers() -> int:
    return Message.objects.filter(direction=Direction.OUT, status=MessageStatus.DELIVERED).count()


def test_logs_never_carry_personal_data(
    client, worker, telegram_bot, fake_openai, caplog, settings
):
    """The bot keeps transcripts raw (masking off) and the model repeats the number; with
    DEBUG on, every process logs its SQL with its parameters (the webhook's insert, the
    worker's answer): the raw data does reach log records, and no formatted line shows it."""
    fake_openai.reply = f"好的，我会打 {PHONE} 联系您，或发邮件到 {EMAIL}。"
    settings.DEBUG = True
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")

    assert post_update(client, telegram_bot, private_text_update(TEXT)).status_code == 200
    wait_for(lambda: delivered_answers() == 1)
    settings.DEBUG = False

    records = list(caplog.records)
    leaking = [record for record in records if any(raw in record.getMessage() for raw in RAW)]
    # Without masking these would leak: the webhook's insert here, the answer in the worker.
    assert any(record.threadName == "MainThread" for record in leaking)
    assert any(
        record.threadName != "MainThread" and EMAIL in record.getMessage() for record in leaking
    )
    plain = PlainFormatter(settings.LOGGING["formatters"]["plain"]["format"])
    lines = [plain.format(record) for record in records]
    lines += [JsonFormatter().format(record) for record in records]
    assert [line for line in lines if any(raw in line for raw in RAW)] == []
    assert any("138****8000" in line and "z***@example.com.cn" in line for line in lines)
    json_lines = [json.loads(line) for line in lines[len(records) :]]
    assert any("110***********002X" in entry["message"] for entry in json_lines)
    # Logs only: with masking off the transcript keeps what the user wrote.
    assert Message.objects.get(direction=Direction.IN).text == TEXT


def test_a_masking_bot_stores_exports_and_prompts_no_personal_data(
    client, worker, telegram_bot, fake_openai, staff_user
):
    # One message while the bot still stores text as written, then masking turned on.
    post_update(client, telegram_bot, private_text_update(f"旧消息：{PHONE}"))
    wait_for(lambda: delivered_answers() == 1)
    # Turned on through the API (the admin shows the same field).
    client.force_login(staff_user)
    assert (
        "mask_personal_data"
        in client.get(f"/admin/bots/bot/{telegram_bot.pk}/change/").content.decode()
    )
    response = client.patch(
        f"/api/v1/bots/{telegram_bot.pk}/",
        {"mask_personal_data": True},
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["mask_personal_data"] is True

    assert post_update(client, telegram_bot, private_text_update(TEXT)).status_code == 200
    wait_for(lambda: delivered_answers() == 2)

    # Stored: masked before the row was written.
    stored = Message.objects.filter(direction=Direction.IN).order_by("id").last()
    assert not any(raw in stored.text for raw in RAW)
    assert "138****8000" in stored.text and "+86 138****8000" in stored.text
    assert "z***@example.com.cn" in stored.text and "110***********002X" in stored.text
    assert "***************0128" in stored.text and "+** ** **** **58" in stored.text
    assert "订单号 202311231380013800123" in stored.text  # an order number is no card
    # The model: the new message and the history (stored raw earlier) both masked.
    prompt = json.dumps(fake_openai.requests[-1]["messages"], ensure_ascii=False)
    assert "旧消息：138****8000" in prompt and "z***@example.com.cn" in prompt
    assert not any(raw in prompt for raw in RAW)
    # The console's export: the older raw row is masked on the way out.
    response = client.get("/console/history/export.csv")
    exported = b"".join(response.streaming_content).decode()
    assert "旧消息：138****8000" in exported and "110***********002X" in exported
    assert not any(raw in exported for raw in RAW)
    jsonl = b"".join(client.get("/console/history/export.jsonl").streaming_content).decode()
    assert "旧消息：138****8000" in jsonl and PHONE not in jsonl
