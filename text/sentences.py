"""Sentence boundaries in display text: 。！？； (full- or half-width), English sentence ends, line breaks."""
from __future__ import annotations

import re

# A terminator, any closing quotes/brackets after it; an English period only before a space or the end
# (so 3.5, GPT-3.5 and e.g. URLs stay whole). A line break always ends a sentence.
_SENTENCE = re.compile(
    r"[^\n]*?(?:[。！？；!?;…]+|\.(?=\s|$))[”’」』）)\]\"'」]*(?!\.)|[^\n]+"
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of every sentence, without surrounding whitespace."""
    spans = []
    for match in _SENTENCE.finditer(text):
        start, end = match.span()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans
