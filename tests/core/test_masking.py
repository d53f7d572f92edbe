"""Personal data in free text: masked in every format it is written in, near misses left alone."""

from __future__ import annotations

import json
import logging

import pytest

from apps.core.logs import JsonFormatter, PlainFormatter
from apps.core.masking import (
    card_number_valid,
    luhn_valid,
    mask_personal_data,
    resident_id_valid,
)

RESIDENT_ID = "11010519491231002X"  # the check digit X is right for these 17 digits
UNIONPAY_CARD = "6222021234567890128"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # Chinese mobiles, bare or with +86 / 0086, spaces or dashes.
        ("我的手机13800138000，谢谢", "我的手机138****8000，谢谢"),
        ("call 138 0013 8000 now", "call 138****8000 now"),
        ("电话：139-1234-5678", "电话：139****5678"),
        ("+86 138 0013 8000", "+86 138****8000"),
        ("+8615912345678", "+86159****5678"),
        ("0086-18612345678", "0086-186****5678"),
        # International E.164.
        ("ring +1 415 555 2671 today", "ring +* *** *** **71 today"),
        ("+44 20 7946 0958", "+** ** **** **58"),
        ("+1 (415) 555-2671", "+* (***) ***-**71"),
        ("+4915123456789.", "+***********89."),
        # E-mail addresses, digits in them too.
        ("mail zhang.san@example.com.cn please", "mail z***@example.com.cn please"),
        ("邮箱13800138000@163.com", "邮箱1***@163.com"),
        # Resident ID numbers with a right check digit (x in lower case too).
        (f"身份证号{RESIDENT_ID}。", "身份证号110***********002X。"),
        ("id 11010519491231002x", "id 110***********002x"),
        # Card numbers: UnionPay, Visa, Amex, Mastercard's 2-series; grouped or not.
        (f"卡号 {UNIONPAY_CARD}", "卡号 ***************0128"),
        ("6222 0212 3456 7890 128", "**** **** **** ***0 128"),
        ("4111-1111-1111-1111", "****-****-****-1111"),
        ("amex 378282246310005", "amex ***********0005"),
        ("mc 2223003122003222", "mc ************3222"),
    ],
)
def test_personal_data_is_masked(text, masked):
    assert mask_personal_data(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        # Order numbers: too long, not a card network's prefix, or a wrong Luhn digit.
        "订单号 202311231380013800123",
        "order 2023112312345678",
        "订单 6222021234567890127",
        "单号E13800138000X",
        # Timestamps: milliseconds, seconds, compact dates.
        "ts 1700712345678",
        "at 1700712345",
        "20231123194223",
        "2026-11-23 19:42:23,123",
        # Amounts and numbers with a decimal part.
        "金额 13800138000.00 元",
        "¥1,380,013,800",
        "price 4111111111111111.5",
        # An ID number whose check digit is wrong, a 12-digit number, a short + number.
        "110105194912310021",
        "138001380001",
        "+12 votes",
        "version 1.13800138000",
        "",
    ],
)
def test_near_misses_are_left_alone(text):
    assert mask_personal_data(text) == text


def test_checksums():
    assert resident_id_valid(RESIDENT_ID) and not resident_id_valid("110105194912310021")
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert card_number_valid(UNIONPAY_CARD)
    assert not card_number_valid("1700712345678")  # Luhn-valid or not, no network starts with 1


def test_logs_mask_personal_data_in_both_formats():
    try:
        raise ValueError(f"user {RESIDENT_ID} sent card {UNIONPAY_CARD}")
    except ValueError as error:
        record = logging.getLogger("apps.test").makeRecord(
            "apps.test",
            logging.WARNING,
            __file__,
            1,
            "could not reach %s (%s)",
            ("13800138000", "ada@example.org"),
            (type(error), error, error.__traceback__),
        )

    plain = PlainFormatter("%(message)s").format(record)
    entry = json.loads(JsonFormatter().format(record))
    for line in (plain, entry["message"] + entry["exc_info"]):
        for raw in ("13800138000", "ada@example.org", RESIDENT_ID, UNIONPAY_CARD):
            assert raw not in line
        assert "138****8000" in line and "a***@example.org" in line
        assert "110***********002X" in line and "0128" in line
    assert entry["message"] == "could not reach 138****8000 (a***@example.org)"
