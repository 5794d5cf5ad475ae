"""Amounts across languages: "$10 billion" is 100亿 in Chinese text, "15亿" is "1.5 billion" in English.

English counts large numbers in thousands (million, billion, trillion), Chinese in ten-thousands (万, 亿 = 10⁸,
万亿 = 10¹²), so the digits themselves differ between the two ways of writing one amount, and neither BM25 nor
CC-CEDICT's translations of the magnitude words can meet them. An amount in a question is rewritten the way the
other language writes it, as that language's keyword tokens, for the crossed keyword search (service/retrieval.py).
"""
from __future__ import annotations

import re
from decimal import Decimal

from text.segment import keyword_tokens

_NUMBER = r"([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+(?:\.[0-9]+)?)"  # ASCII digits: normalize() made them so
_ENGLISH = re.compile(_NUMBER + r"\s*(thousand|million|billion|trillion|bn)\b")
_CHINESE = re.compile(_NUMBER + r"\s*(万亿|百万|千万|亿|万)")  # not 千 alone: 3千米 is a distance, not an amount
_ENGLISH_SCALE = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "bn": 10**9, "trillion": 10**12}
_CHINESE_SCALE = {"万": 10**4, "百万": 10**6, "千万": 10**7, "亿": 10**8, "万亿": 10**12}
_ENGLISH_WORDS = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))


def amounts_across(normalized: str, question_family: str) -> list[str]:
    """The amounts in a `normalize`d question (lower-cased, Simplified) written the other language's way, as its
    keyword tokens: "10 billion" → 100, 亿; "1.5亿" → 150, million. [] for mixed questions or none."""
    if question_family == "en":
        return [t for value in _amounts(_ENGLISH, _ENGLISH_SCALE, normalized) for t in _as_chinese(value)]
    if question_family == "zh":
        return [t for value in _amounts(_CHINESE, _CHINESE_SCALE, normalized) for t in _as_english(value)]
    return []


def _amounts(pattern: re.Pattern, scale: dict[str, int], text: str) -> list[Decimal]:
    return [Decimal(number.replace(",", "")) * scale[word] for number, word in pattern.findall(text)]


def _as_chinese(value: Decimal) -> list[str]:
    if value >= 10**12:  # 1.2万亿 and 12000亿 are both written
        forms = [_plain(value / 10**12) + "万亿", _plain(value / 10**8) + "亿"]
    elif value >= 10**8:
        forms = [_plain(value / 10**8) + "亿"]
    elif value >= 10**4:
        forms = [_plain(value / 10**4) + "万"]
    else:
        forms = [_plain(value)]
    return [t for form in forms for t in keyword_tokens(form)]


def _as_english(value: Decimal) -> list[str]:
    tokens = keyword_tokens(_plain(value, ",f")) if value < 10**6 else []  # 10,000 as English writes it too
    for size, word in _ENGLISH_WORDS:
        if value >= size:
            return [_plain(value / size), word] + tokens
    return tokens


def _plain(value: Decimal, spec: str = "f") -> str:
    """15, 1.5, 4000 (with spec ",f": 4,000): no exponent, no trailing zeros."""
    text = format(value.normalize(), spec)
    return text.rstrip("0").rstrip(".") if "." in text else text
