"""Keyword tokens for BM25: jieba search-mode segmentation of the normalized text, punctuation dropped.

Search mode also emits the words inside long compounds (数据中心 → 数据, 中心, 数据中心), so a question
that says 数据 still meets a passage that says 数据中心. Input must already be `normalize`d, so
English arrives lower-cased and Chinese Simplified.

The tokens are jieba's, made faster where the result is known: jieba cuts its input into blocks of Han, Latin
letters, digits and +#&._%- and segments each alone, and yields every other character alone.
  - a block of Han only (most of a Chinese text) goes to rjieba: jieba-rs, the same dictionary, DAG and HMM
    in Rust, ~20× faster, the same tokens for such blocks (its splitting of "1-2" differs, so only these);
  - a block of lower-case letters and digits only (an English word, a number) is one token, as jieba's HMM
    makes it, as long as jieba's dictionary has no word of those characters (checked when it loads);
  - any other block goes to jieba itself; characters between blocks are tokens when they are word characters.
tests/test_segment.py checks the tokens equal jieba's on the datasets.
"""
from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Iterable

import jieba
import rjieba

_WORD = re.compile(r"\w")
_BLOCK = re.compile(r"[\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-]+")  # jieba's re_han_default
_HAN = re.compile(r"[\u4E00-\u9FD5]+")
_ALNUM = re.compile(r"[a-z0-9]+")
_init_lock = threading.Lock()
_ready = False
_alnum_whole = True  # jieba's dictionary has no [a-z0-9]+ word: such a block is one token


def _ensure_jieba() -> None:
    global _ready, _alnum_whole
    with _init_lock:
        if not _ready:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _alnum_whole = not any(count and _ALNUM.fullmatch(word) for word, count in jieba.dt.FREQ.items())
            _ready = True


def keyword_tokens(normalized: str) -> list[str]:
    _ensure_jieba()
    tokens: list[str] = []
    between = 0
    for block in _BLOCK.finditer(normalized):
        tokens += (c for c in normalized[between : block.start()] if _WORD.match(c))
        tokens += _block_tokens(block.group())
        between = block.end()
    tokens += (c for c in normalized[between:] if _WORD.match(c))
    return tokens


def _block_tokens(block: str) -> list[str]:
    if _HAN.fullmatch(block):
        return rjieba.cut_for_search(block, True)
    if _alnum_whole and _ALNUM.fullmatch(block):
        return [block]
    return [t for t in (tok.strip() for tok in jieba.cut_for_search(block)) if t and _WORD.search(t)]


def word_frequencies() -> dict[str, int]:
    """jieba's dictionary: how often each word occurs in its corpus (ranks translations, text/bilingual.py)."""
    _ensure_jieba()
    return jieba.dt.FREQ


def word_weights(words: Iterable[str]) -> dict[str, float]:
    """How much each keyword says, from how rare it is in general: −ln of its share of jieba's dictionary counts
    (的 5.2, 年 5.5, 宁波府 16.8); a word the dictionary lacks (an English word, a name, a number) weighs as one
    counted once (17.9). For the relevance model it did as well as IDF over the corpus (evals/README.md), and no
    store has to count the passages holding each word."""
    frequencies = word_frequencies()
    return {word: math.log(jieba.dt.total / (frequencies.get(word) or 1)) for word in words}
