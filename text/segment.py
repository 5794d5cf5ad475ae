"""Keyword tokens for BM25: jieba search-mode segmentation of the normalized text, punctuation dropped.

Search mode also emits the words inside long compounds (数据中心 → 数据, 中心, 数据中心), so a question
that says 数据 still meets a passage that says 数据中心. Input must already be `normalize`d, so
English arrives lower-cased and Chinese Simplified.
"""
from __future__ import annotations

import logging
import re
import threading

import jieba

_WORD = re.compile(r"\w")
_init_lock = threading.Lock()
_ready = False


def _ensure_jieba() -> None:
    global _ready
    with _init_lock:
        if not _ready:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _ready = True


def keyword_tokens(normalized: str) -> list[str]:
    _ensure_jieba()
    return [t for t in (tok.strip() for tok in jieba.cut_for_search(normalized)) if t and _WORD.search(t)]


def word_frequencies() -> dict[str, int]:
    """jieba's dictionary: how often each word occurs in its corpus (ranks translations, service/bilingual.py)."""
    _ensure_jieba()
    return jieba.dt.FREQ
