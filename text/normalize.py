"""Normalization for matching, and script/language detection.

Questions and passages meet in one form: pinyin junk stripped, NFKC (full-width → half-width,
compatibility ideographs → unified), Traditional → Simplified with OpenCC's phrase-level `t2s`, and
(for keyword matching) Latin case folded. Display text is never normalized: Traditional stays
Traditional on screen.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Literal

from text.convert import Converter, converter

Language = Literal["zh-Hans", "zh-Hant", "en", "mixed"]

HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TONE_MARKS = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ"
# A Han character followed by one parenthesized pinyin syllable with a tone mark: 協(xié), 據(jù).
# The tone mark is what tells `(xié)` from legitimate `(gigawatts)` or `(Satya Nadella)`.
PINYIN_ANNOTATION = re.compile(
    rf"([{HAN}])[(（]([a-zü]{{0,6}}[{_TONE_MARKS}][a-zü]{{0,6}})[)）]", re.IGNORECASE
)
_HAN_CHAR = re.compile(f"[{HAN}]")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def _converters() -> tuple[Converter, Converter]:
    return converter("t2s"), converter("s2t")


def strip_pinyin(text: str) -> str:
    return PINYIN_ANNOTATION.sub(r"\1", text)


def fold_script(text: str) -> str:
    """Pinyin junk out, NFKC, Traditional → Simplified. Case is kept (the dense model is cased)."""
    t2s, _ = _converters()
    return t2s.convert(unicodedata.normalize("NFKC", strip_pinyin(text)))


def _latin_folding() -> dict[str, str]:
    """Each accented Latin letter whose decomposition is one ASCII letter and marks (ü → u, é → e, ã → a);
    ß, æ, ø and the like have none and stay."""
    table = {}
    for char in map(chr, [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)]):
        base = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
        if len(base) == 1 and base.isascii() and base.isalpha() and base != char:
            table[char] = base
    return table


_LATIN_FOLDING = _latin_folding()
# a regex finds the few accented letters in 2 µs where str.translate visits every character (30 µs a passage)
_ACCENTED = re.compile(f"[{''.join(_LATIN_FOLDING)}]")


def keyword_form(folded: str) -> str:
    """A `fold_script` text as keyword matching reads it: case folded, Latin letters without their accents, so
    "Zürich" and "Zurich" are one word (not z / ü / rich); one character for one, so offsets still hold."""
    return _ACCENTED.sub(lambda accented: _LATIN_FOLDING[accented.group()], folded.casefold())


def normalize(text: str) -> str:
    """The keyword-matching form: `fold_script`, then `keyword_form`."""
    return keyword_form(fold_script(text))


def detect_language(text: str) -> Language:
    """By the share of Han characters among Han characters and Latin words: zh-Hans / zh-Hant (by which
    OpenCC direction changes more characters) from 60 %, en up to 15 %, mixed in between. Chinese text
    quotes Latin names (OpenAI與AWS…) and English text quotes a few Han characters; neither is mixed."""
    han = len(_HAN_CHAR.findall(text))
    latin = len(_LATIN_WORD.findall(text))
    if han + latin == 0:
        return "mixed"
    han_share = han / (han + latin)
    if han_share >= 0.6:
        return _chinese_script(text)
    return "en" if han_share <= 0.15 else "mixed"


def _chinese_script(text: str) -> Language:
    t2s, s2t = _converters()
    traditional_marks = _changed_chars(text, t2s.convert(text))
    simplified_marks = _changed_chars(text, s2t.convert(text))
    return "zh-Hant" if traditional_marks > simplified_marks else "zh-Hans"


def _changed_chars(before: str, after: str) -> int:
    return abs(len(before) - len(after)) + sum(a != b for a, b in zip(before, after))
