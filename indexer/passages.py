"""Sentence-aware passages with overlap, each a contiguous slice of the cleaned text (and so of the original)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from text.clean import CleanText
from text.normalize import HAN
from text.sentences import sentence_spans

# Size is counted in "units", close to model tokens for both scripts: one per Han character, one per
# Latin word or number. TARGET_UNITS was chosen by `make eval` (see evals/README.md).
TARGET_UNITS = 160
OVERLAP_UNITS = 40
_UNIT = re.compile(rf"[{HAN}]|[A-Za-z0-9]+")
_CLAUSE_END = re.compile(r"[，,、：:]")


@dataclass(frozen=True)
class Chunking:
    target_units: int = TARGET_UNITS
    overlap_units: int = OVERLAP_UNITS

    @classmethod
    def of(cls, target_units: int) -> Chunking:
        """A passage size with the default proportion of overlap (a quarter)."""
        return cls(target_units, target_units // 4)


@dataclass(frozen=True)
class Passage:
    doc_id: str
    ordinal: int
    start: int  # offsets into the original decoded document
    end: int
    clean_start: int  # the same passage in the document's cleaned text
    clean_end: int
    text: str  # display text: cleaned, in the document's own script


def units(text: str) -> int:
    return len(_UNIT.findall(text))


def split_passages(doc_id: str, clean: CleanText, target: int = TARGET_UNITS, overlap: int = OVERLAP_UNITS) -> list[Passage]:
    spans: list[tuple[int, int]] = []
    for section_start, section_end in _sections(clean):
        sentences = _bounded_sentences(clean, section_start, section_end, target)
        spans.extend(_pack(clean.text, sentences, target, overlap))
    return [_passage(doc_id, i, clean, start, end) for i, (start, end) in enumerate(spans)]


def _sections(clean: CleanText) -> list[tuple[int, int]]:
    """Stretches of the cleaned text between the places where the cleaner cut a paragraph out."""
    cuts = [0, *clean.breaks, len(clean.text)]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def _bounded_sentences(clean: CleanText, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Sentences of text[start:end]; one longer than `limit` units is split at clauses, then hard."""
    text, result = clean.text, []
    for a, b in sentence_spans(text[start:end]):
        a, b = a + start, b + start
        if units(text[a:b]) <= limit:
            result.append((a, b))
        else:
            result.extend(_split_long(clean, a, b, limit))
    return result


def _split_long(clean: CleanText, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Cut at the last clause mark that fits, else at the last unit that fits, never inside a construct."""
    text, pieces, piece_start, last_clause = clean.text, [], start, None
    for match in _UNIT.finditer(text, start, end):
        if units(text[piece_start : match.end()]) > limit and clean.mapped.can_cut_before(match.start()):
            cut = last_clause if last_clause and last_clause > piece_start else match.start()
            pieces.append((piece_start, cut))
            piece_start, last_clause = cut, None
        clause = _CLAUSE_END.search(text, match.end(), min(match.end() + 1, end))
        if clause and clean.mapped.can_cut_before(clause.end()):
            last_clause = clause.end()
    pieces.append((piece_start, end))
    return [(a, b) for a, b in (_trim(text, a, b) for a, b in pieces) if b > a]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _pack(text: str, sentences: list[tuple[int, int]], target: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy: fill a passage up to `target` units, then start the next one `overlap` units back."""
    sizes = [units(text[a:b]) for a, b in sentences]
    spans, first = [], 0
    while first < len(sentences):
        last, total = first, sizes[first]
        while last + 1 < len(sentences) and total + sizes[last + 1] <= target:
            last += 1
            total += sizes[last]
        spans.append((sentences[first][0], sentences[last][1]))
        if last + 1 >= len(sentences):
            break
        first = _overlap_start(sizes, first, last, overlap)
    return spans


def _overlap_start(sizes: list[int], first: int, last: int, overlap: int) -> int:
    """The first sentence of the next passage: repeat trailing sentences worth ≤ `overlap` units."""
    nxt, carried = last + 1, 0
    while nxt - 1 > first and carried + sizes[nxt - 1] <= overlap:
        nxt -= 1
        carried += sizes[nxt]
    return nxt


def _passage(doc_id: str, ordinal: int, clean: CleanText, start: int, end: int) -> Passage:
    original_start, original_end = clean.mapped.original_span(start, end)
    return Passage(doc_id, ordinal, original_start, original_end, start, end, clean.text[start:end])
