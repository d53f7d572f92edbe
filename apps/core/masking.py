"""Showing secrets without revealing them; masking personal data in free text."""

import re


def mask_secret(value: str | None) -> str:
    """`sk-abc…wxyz` style: enough to recognise a key, never enough to use it."""
    if not value:
        return ""
    if len(value) <= 8:
        return "•" * len(value)
    return f"{value[:3]}…{value[-4:]}"


def mask_headers(headers: dict | None) -> dict[str, str]:
    """Header names with masked values: what the admin and the API show of them."""
    return {str(name): mask_secret(str(value)) for name, value in (headers or {}).items()}


# Personal data ---------------------------------------------------------------------------------
#
# Phone numbers, e-mail addresses, Chinese resident ID numbers and bank-card numbers, found
# in free text and masked (always in logs; per bot in transcripts, exports and prompts).
# Numbers only count when they stand alone (no digit, Latin letter or decimal point
# touching them), so parts of order numbers, timestamps and amounts are left alone;
# ID numbers must carry a valid birth date and check digit, card numbers a card
# network's prefix and a valid Luhn digit.

_BEFORE = r"(?<![0-9A-Za-z.+])"
_AFTER = r"(?![0-9A-Za-z]|\.[0-9])"
_SEP = r"[ \-\u3000]"

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9][A-Za-z0-9._%+-]*)@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24})\b"
)
_CN_ID = re.compile(
    _BEFORE
    + r"[1-8][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]"
    + _AFTER
)
_CARD = re.compile(_BEFORE + r"[0-9](?:" + _SEP + r"?[0-9]){12,18}" + _AFTER)
_CN_MOBILE = re.compile(
    r"(?<![0-9A-Za-z.])((?:(?:\+|00)86" + _SEP + r"?)?)"
    r"(1[3-9][0-9](?:" + _SEP + r"?[0-9]{4}){2})" + _AFTER
)
_INTERNATIONAL_PHONE = re.compile(
    r"(?<![0-9A-Za-z.])\+(?!86)[1-9](?:[ \-]?\(?[0-9]\)?){6,16}" + _AFTER
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# ISO/IEC 7812 issuers: travel and entertainment (3: Amex, JCB, Diners), banking (4, 5:
# Visa, Mastercard), merchandising and banking (6: UnionPay, Discover, Maestro), and
# Mastercard's 2221-2720 range. Timestamps (1…) and dates (19…, 20…) are none of them.
_CARD_PREFIXES = tuple("3456")


def resident_id_valid(number: str) -> bool:
    """A Chinese resident ID number (18 characters) whose check digit is right."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(number, _ID_WEIGHTS, strict=False))
    return "10X98765432"[total % 11] == number[17].upper()


def luhn_valid(digits: str) -> bool:
    """The Luhn check every payment card number passes."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def card_number_valid(digits: str) -> bool:
    """13 to 19 digits with a card network's prefix and a valid Luhn check digit."""
    if not 13 <= len(digits) <= 19:
        return False
    issued = digits.startswith(_CARD_PREFIXES) or 2221 <= int(digits[:4]) <= 2720
    return issued and luhn_valid(digits)


def _keep_last(text: str, keep: int) -> str:
    """Every digit of `text` but the last `keep` as *, separators kept."""
    digits = sum(char.isdigit() for char in text)
    seen = 0
    masked = []
    for char in text:
        if char.isdigit():
            seen += 1
            masked.append(char if seen > digits - keep else "*")
        else:
            masked.append(char)
    return "".join(masked)


def _mask_email(match: re.Match) -> str:
    return f"{match.group(1)[0]}***@{match.group(2)}"


def _mask_resident_id(match: re.Match) -> str:
    number = match.group(0)
    return number[:3] + "*" * 11 + number[-4:] if resident_id_valid(number) else number


def _mask_card(match: re.Match) -> str:
    text = match.group(0)
    digits = re.sub(r"[^0-9]", "", text)
    return _keep_last(text, 4) if card_number_valid(digits) else text


def _mask_cn_mobile(match: re.Match) -> str:
    digits = re.sub(r"[^0-9]", "", match.group(2))
    return f"{match.group(1)}{digits[:3]}****{digits[-4:]}"


def _mask_international_phone(match: re.Match) -> str:
    text = match.group(0)
    digits = sum(char.isdigit() for char in text)
    return _keep_last(text, 2) if 8 <= digits <= 15 else text


def mask_personal_data(text: str) -> str:
    """`text` with phone numbers, e-mail addresses, ID and bank-card numbers masked.

    `138****8000`, `a***@example.com`, `110***********123X`, `**** **** **** 0128`:
    enough for a reader to see what kind of thing was there, never the thing itself.
    """
    if not text or not any(char.isdigit() or char == "@" for char in text):
        return text
    text = _EMAIL.sub(_mask_email, text)
    text = _CN_ID.sub(_mask_resident_id, text)
    text = _CARD.sub(_mask_card, text)
    text = _INTERNATIONAL_PHONE.sub(_mask_international_phone, text)  # +86: as a mobile
    return _CN_MOBILE.sub(_mask_cn_mobile, text)
