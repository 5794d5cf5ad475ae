"""Amounts across languages (text/numerals.py): thousands-based English against ten-thousands-based Chinese."""
from __future__ import annotations

import pytest

from text.numerals import amounts_across


@pytest.mark.parametrize("question, tokens", [
    ("what share after its $10 billion investment?", ["100", "亿"]),
    ("compared with microsoft's 1.5 billion devices", ["15", "亿"]),
    ("a $400bn forecast", ["4000", "亿"]),
    ("1,500 million users", ["15", "亿"]),
    ("300 thousand people", ["30", "万"]),
    ("5 thousand people", ["5000"]),
    ("2.5 trillion yuan", ["2.5", "万亿", "25000", "亿"]),  # both ways Chinese writes it
    ("founded in 2019 by 3 people", []),  # a number without a magnitude is written the same in both
])
def test_an_english_amount_is_written_the_chinese_way(question, tokens):
    assert amounts_across(question, "en") == tokens


@pytest.mark.parametrize("question, tokens", [
    ("微软投资100亿美元后", ["10", "billion"]),
    ("超过20亿台设备", ["2", "billion"]),
    ("1.5亿用户", ["150", "million"]),
    ("2.5万亿元", ["2.5", "trillion"]),
    ("1万人", ["10", "thousand", "10", "000"]),  # and as digits: English text writes 10,000
    ("3千米", []),  # 千 alone is too often a unit's prefix to be read as an amount
])
def test_a_chinese_amount_is_written_the_english_way(question, tokens):
    assert amounts_across(question, "zh") == tokens


def test_an_amount_goes_across_and_back_unchanged():
    for english in ("10 billion", "1.5 billion", "250 million", "3 trillion", "40 thousand"):
        chinese = "".join(amounts_across(english, "en")[:2])
        assert " ".join(amounts_across(chinese, "zh")[:2]) == english


def test_mixed_questions_get_no_amounts():
    assert amounts_across("10 billion 和 100亿", "mixed") == []
