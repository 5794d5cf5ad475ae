"""Positioned text lines of PDF pages (text layer or OCR) → readable text with paragraphs and page starts.

Lines carry their box in points, y growing downwards. The steps: drop running headers, footers and page numbers;
put two-column pages into reading order; join lines wrapped inside a paragraph (also across a page break) and
end a paragraph where the geometry says so: a blank gap, an indented next line, a change of font size, or a
line that stops well short of the right margin (the next line's first word would have fit).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

CJK = (  # ideographs, radicals, kana, bopomofo, CJK and fullwidth punctuation
    "\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003134f"
)
_CJK_CHAR = re.compile(f"[{CJK}]")
_NEXT_TO_CJK = ",.;:!?()“”‘’"  # spaces between these and a CJK character go too: "公司 ”" → "公司”"
_CJK_GAP = re.compile(f"(?<=[{CJK}]) +(?=[{CJK}{_NEXT_TO_CJK}])|(?<=[{CJK}{_NEXT_TO_CJK}]) +(?=[{CJK}])")
_LEADING_CJK = re.compile(r".[,.;:!?)\]}，。、；：！？）」』”’》〉…—]*")
_HYPHEN = "[-\u00ad\u2010\u2011]"  # Chromium draws a soft hyphen at a line break as U+2010
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufeff]")
_SENTENCE_END = tuple("。！？；：.!?;:…”」』\"')）")
_PAGE_NUMBER = re.compile(
    r"[-–—]?\s*\d{1,4}\s*[-–—]?|\d{1,4}\s*/\s*\d{1,4}|(?:page|p\.)\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?"
    r"|第\s*\d{1,4}\s*[页頁](?:\s*[,，/／]?\s*共\s*\d{1,4}\s*[页頁])?|共\s*\d{1,4}\s*[页頁]",
    re.IGNORECASE,
)
MARGIN_BAND = 0.12  # running headers and footers live in the top and bottom 12% of a page
REPEAT_SHARE = 0.5  # a line repeated at the top or bottom of this share of pages is a running header/footer


@dataclass(frozen=True)
class Line:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float  # font size in points
    column: int = 0  # 0: spans the page or the page has one column; 1 left, 2 right
    left: float = 0.0  # the left and right edges of the line's column (set by `reading_order`)
    right: float = 0.0


@dataclass(frozen=True)
class Page:
    lines: list[Line]
    width: float
    height: float


def tidy(text: str) -> str:
    """One line's text: control characters out, no spaces between CJK characters, single spaces."""
    text = _CONTROL.sub("", text).replace("\u00a0", " ").replace("\u3000", " ")
    return _CJK_GAP.sub("", " ".join(text.split()))


def is_page_number(text: str) -> bool:
    return _PAGE_NUMBER.fullmatch(text.strip()) is not None


def drop_running_lines(pages: list[Page]) -> list[Page]:
    """Without the lines in the top or bottom margin that repeat (digits ignored) on many pages or are page numbers."""
    def in_band(line: Line, page: Page) -> bool:
        return line.bottom < page.height * MARGIN_BAND or line.top > page.height * (1 - MARGIN_BAND)

    def key(line: Line) -> str:
        return re.sub(r"\d+", "0", re.sub(r"\s+", "", line.text))

    seen = Counter(k for page in pages for k in {key(ln) for ln in page.lines if in_band(ln, page)})
    threshold = max(2, math.ceil(REPEAT_SHARE * len(pages)))
    repeated = {k for k, n in seen.items() if n >= threshold}
    return [
        replace(page, lines=[
            ln for ln in page.lines
            if not (in_band(ln, page) and (key(ln) in repeated or is_page_number(ln.text)))
        ])
        for page in pages
    ]


def reading_order(page: Page) -> list[Line]:
    """The page's lines top to bottom; on a two-column page, between full-width lines, left column before right."""
    lines = sorted(page.lines, key=lambda ln: (round(ln.top, 1), ln.x0))
    if not lines:
        return []
    mid = page.width / 2
    column = [1 if ln.x1 < mid else 2 if ln.x0 > mid else 0 for ln in lines]
    counts = Counter(column)
    two_columns = counts[1] >= 3 and counts[2] >= 3 and counts[0] <= 0.2 * (counts[1] + counts[2])
    if not two_columns:
        column = [0] * len(lines)
    ordered: list[Line] = []
    segment: list[tuple[int, Line]] = []
    for col, line in [*zip(column, lines), (0, None)]:
        if col and line is not None:
            segment.append((col, line))
            continue
        ordered += [replace(ln, column=c) for c, ln in sorted(segment, key=lambda s: s[0])]  # stable: top to bottom
        segment = []
        if line is not None:
            ordered.append(line)
    return _with_margins(ordered)


def _with_margins(lines: list[Line]) -> list[Line]:
    """Each line with the left and right edges of its column (robust to short lines and indents)."""
    edges = {}
    for col in {ln.column for ln in lines}:
        x0 = np.array([ln.x0 for ln in lines if ln.column == col])
        x1 = np.array([ln.x1 for ln in lines if ln.column == col])
        edges[col] = float(np.percentile(x0, 10)), float(np.percentile(x1, 90))
    return [replace(ln, left=edges[ln.column][0], right=edges[ln.column][1]) for ln in lines]


def _first_word_width(line: Line) -> float:
    text = line.text
    if _CJK_CHAR.match(text):  # a CJK line break pushes a character down with the punctuation that follows it
        return (len(_LEADING_CJK.match(text).group()) + 1) * line.size
    word = text.split(" ", 1)[0]
    return (len(word) * 0.5 + 0.3) * line.size  # 0.3: the space before it


def starts_paragraph(prev: Line, line: Line, typical_gap: float | None) -> bool:
    """Whether `line` begins a new paragraph after `prev` (typical_gap None: across a page or column break)."""
    size = max(prev.size, line.size, 1.0)
    if abs(prev.size - line.size) > 0.2 * size:
        return True
    if typical_gap is not None and line.top - prev.bottom > typical_gap + 0.5 * size:
        return True
    indented = line.x0 - line.left > 0.8 * size
    # lines of an indented block (a quote) share its indent and its right edge; only a line that steps in
    # further than the one before starts a paragraph (a first-line indent, or a centred line)
    in_block = indented and abs(line.x0 - prev.x0) < 0.5 * size
    if indented and not in_block:
        return True
    room = (max(prev.x1, line.x1) if in_block else prev.right) - prev.x1
    if room > _first_word_width(line):
        return True
    return prev.text.endswith(_SENTENCE_END) and room > size


def _joint(prev: str, nxt: str) -> tuple[str, str]:
    """How two wrapped lines of one paragraph meet: (prev without a dropped hyphen, separator)."""
    if re.search(f"[A-Za-z]{_HYPHEN}$", prev) and re.match(r"[a-z]", nxt):
        return prev[:-1], ""
    if _CJK_CHAR.match(prev[-1]) or _CJK_CHAR.match(nxt[0]) or re.search(f"{_HYPHEN}$", prev):
        return prev, ""
    return prev, " "


def assemble(pages: list[Page]) -> tuple[str, list[int]]:
    """The text of `pages` (running lines already dropped) in reading order, and where each page starts."""
    parts: list[str] = []
    length = 0
    starts: list[int] = []
    prev: Line | None = None
    for page in pages:
        lines = reading_order(page)
        gaps = [b.top - a.bottom for a, b in zip(lines, lines[1:]) if a.column == b.column and b.top > a.bottom - 1]
        typical_gap = float(np.median(gaps)) if gaps else 0.0
        page_start: int | None = None
        for i, line in enumerate(lines):
            if prev is not None:
                same_flow = i > 0 and prev.column == line.column
                if starts_paragraph(prev, line, typical_gap if same_flow else None):
                    parts.append("\n")
                    length += 1
                else:
                    kept, sep = _joint(parts[-1], line.text)
                    length += len(kept) - len(parts[-1]) + len(sep)
                    parts[-1] = kept
                    parts.append(sep)
            if page_start is None:
                page_start = length
            parts.append(line.text)
            length += len(line.text)
            prev = line
        starts.append(length if page_start is None else page_start)
    return "".join(parts), starts
