"""Languages: telling which of our languages a message is written in.

The platform speaks zh-Hans and English, so the question a bot asks of each message
is "Chinese, English, or can't tell". Writing systems answer that offline, at once
and deterministically, even for the two-word messages chats are full of ("你好",
"ok thanks"), where statistical detectors are at their weakest: Han characters
without Japanese kana or Korean Hangul mean Chinese; Latin words mean English (the
closest we have for other Latin-script languages too).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.utils.translation import get_supported_language_variant

CHINESE = "zh-hans"
ENGLISH = "en"

_NOISE = re.compile(r"https?://\S+|www\.\S+|(?<![\w.+-])[\w.+-]+@[\w-]+\.[\w.]+|@\S+|^/\w+(@\w+)?")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_KANA_HANGUL = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")


def language_detect(text: str) -> str | None:
    """ "zh-hans" or "en" for the language `text` is written in; None when it can't be told.

    URLs, e-mail addresses, @mentions and a leading /command say nothing about the
    writer's language and are left out. A Han character counts as much as a Latin
    word, so "帮我写一个 Python function" is Chinese and "What does 你好 mean?" English.
    Japanese and Korean (kana or Hangul outweighing Han) are neither: None.
    """
    text = _NOISE.sub(" ", text or "")
    han = len(_HAN.findall(text))
    kana_hangul = len(_KANA_HANGUL.findall(text))
    latin_words = len(_LATIN_WORD.findall(text))
    if kana_hangul and kana_hangul >= han:
        return None
    if han and han > latin_words:
        return CHINESE
    if latin_words:
        return ENGLISH
    return None


def default_language() -> str:
    """The language used when nothing else tells: LANGUAGE_CODE, as one of LANGUAGES."""
    try:
        return get_supported_language_variant(settings.LANGUAGE_CODE)
    except LookupError:
        return ENGLISH


def language_from_scope(scope: Mapping[str, Any]) -> str:
    """The page language for a websocket, as LocaleMiddleware picks it for a request.

    The language switch's cookie first, then the browser's Accept-Language, then
    LANGUAGE_CODE (websockets do not pass through the middleware).
    """
    from django.utils.translation import trans_real

    headers = {name.lower(): value for name, value in scope.get("headers", [])}
    cookies = scope.get("cookies") or {}
    chosen = cookies.get(settings.LANGUAGE_COOKIE_NAME)
    if chosen:
        try:
            return get_supported_language_variant(chosen)
        except LookupError:
            pass
    accept = headers.get(b"accept-language", b"").decode("latin-1")
    for code, _quality in trans_real.parse_accept_lang_header(accept):
        if code == "*":
            break
        try:
            return get_supported_language_variant(code)
        except LookupError:
            continue
    return default_language()
