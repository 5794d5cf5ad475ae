"""Turn a decoded document into display text, keeping the offset map back to the original.

It starts from a document's readable content (`extract.Extracted.content`: a text file as it is, a web page's
main content, a PDF's or Word file's extracted text), already mapped to the text citations point into.
The rules, in order (each one tested in tests/test_clean.py):
 1. HTML comments go (000's `<!-- title: … -->` header).
 2. Kangxi radicals and CJK compatibility ideographs become the ordinary ideographs (⽣ → 生), one for one.
 3. Markdown: images and links become their label (`![]()` disappears), heading marks and * / ** go.
 4. Inline pinyin annotations go: `協(xié)議` → `協議`; `10吉瓦(gigawatts)` stays (no tone mark).
 5. Site chrome lines go: lazy-load placeholders, rating widgets, breadcrumbs, keyword footers, platform
    notices (CHROME_LINES); everything from a rating widget's heading to the end goes (CHROME_TAIL).
 6. A paragraph repeated by the paragraphs after it (a lead or 摘要 summary) goes; the chunker never
    lets one passage span the gap, so every passage is still a contiguous slice of the original.
 7. Whitespace: lines are trimmed, blank lines dropped, runs of spaces collapsed.
Chrome is matched on the normalized line, so one pattern covers Simplified and Traditional spellings.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .ideographs import unify_ideographs
from .mapped import MappedText
from .normalize import PINYIN_ANNOTATION, normalize

_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# CJK Radicals Supplement, Kangxi radicals, CJK compatibility ideographs (PDF text layers are full of them)
_IDEOGRAPH_VARIANT = re.compile("[\u2e80-\u2eff\u2f00-\u2fdf\uf900-\ufaff\U0002f800-\U0002fa1f]")

# Markup never spans a sentence end, so a passage boundary (always at a sentence end) can't fall
# inside a construct; a heading mark counts wherever a sentence can start, not only at a line start.
_NO_SENTENCE_END = r"(?:(?!\. )[^\]\n。！？；!?;*])"
_MD_IMAGE = re.compile(rf"!\[({_NO_SENTENCE_END}*)\]\([^)\n]*\)")
_MD_LINK = re.compile(rf"\[({_NO_SENTENCE_END}+)\]\((?:[^()\s]|\([^()\s]*\))*\)")
_MD_HEADING = re.compile(r"(?<![^\s。！？；!?;…，,、：:])#{1,6}[ \t]+(?=\S)")
# Emphasis neither opens before nor closes after whitespace (CommonMark's flanking rule): a kept label that
# ended in a space would be trimmed off a passage, and with it the widening that covers the closing mark.
_MD_EMPHASIS = re.compile(rf"(\*\*?)(?=[^\s*])({_NO_SENTENCE_END}*?[^\s\]\n。！？；!?;*])\1")

# Whole lines (normalized: Simplified, half-width, case-folded, trimmed) that are site chrome.
CHROME_LINES = re.compile(
    "|".join(
        [
            r"(加载中|载入中)[.。…]*",  # lazy-load placeholders (001)
            r"(最新资讯|编辑精选|热门评论|相关阅读|推荐阅读|技术专区|博客专栏|关闭|招聘|top \d+)",  # widget headings
            r"已有\s*\d*\s*条意见|\d+ \(\d+%\)",  # rating widget (001)
            r"created by \S+",  # footer credit (001)
            r".*\d*次阅读.*\d*条评论",  # hit counters in the byline (001)
            r"[^>\n]+( > [^>\n]+){2,}",  # breadcrumbs: 首页 > 博客 > … (004)
            r"(关键词|关键字|标签|tags)\s*:.*",  # keyword footers (004)
            r"发布人:.*",  # blog byline with its 发布文章 button (004)
            r"(作者|编辑|责编|邮箱|email)\s*[|:].{0,40}",  # bylines and contact lines (002, 004)
            r"点个.{0,3}爱心.*",  # like-button prompts (002)
            r"图源:.*",  # image credits (001)
            r"(特别声明|免责声明):.*|notice: the content above.*",  # platform notices (002)
            r"\*?.*仅代表.*个人观点.*(侵权|删除).*",  # platform notices (004)
        ]
    )
)
# A line after which everything is chrome (001's rating widget, repeated title and side bars).
CHROME_TAIL = re.compile(r"对文章打分")
_LEAD_LABEL = re.compile(r"^(摘要|导读|【导读】)\s*:?")
_MIN_REPEATED_CHARS = 20
_REPEAT_LOOKAHEAD = 3

_LINE = re.compile(r"[^\n]*\n?")
_EDGE_SPACES = re.compile(r"^[ \t\u3000\xa0]+|[ \t\u3000\xa0]+$", re.M)
_INNER_SPACES = re.compile(r"[ \t\u3000\xa0]{2,}")
_BLANK_LINES = re.compile(r"\n(?:[ \t\u3000\xa0]*\n)+")
_DOC_EDGES = re.compile(r"^\s+|\s+$")


@dataclass(frozen=True)
class CleanText:
    mapped: MappedText
    breaks: tuple[int, ...]  # cleaned offsets where content was cut out between paragraphs

    @property
    def text(self) -> str:
        return self.mapped.text


def clean(content: str | MappedText) -> CleanText:
    """Clean a document's content: a str is taken as the original itself (a text file)."""
    mapped = MappedText.identity(content) if isinstance(content, str) else content
    mapped = mapped.sub(_HTML_COMMENT, lambda m: "")
    mapped = mapped.sub(_IDEOGRAPH_VARIANT, lambda m: unify_ideographs(m.group(0)))
    mapped = _strip_markdown(mapped)
    mapped = mapped.sub(PINYIN_ANNOTATION, lambda m: 1)
    mapped = mapped.sub(_LINE, _drop_chrome_line)
    mapped = _drop_chrome_tail(mapped)
    mapped = _tidy_whitespace(mapped)
    return _drop_repeated_paragraphs(mapped)


def _strip_markdown(mapped: MappedText) -> MappedText:
    mapped = mapped.sub(_MD_IMAGE, lambda m: 1)
    mapped = mapped.sub(_MD_LINK, lambda m: 1)
    mapped = mapped.sub(_MD_HEADING, lambda m: "")
    return mapped.sub(_MD_EMPHASIS, lambda m: 2)


def is_chrome_line(line: str) -> bool:
    return CHROME_LINES.fullmatch(normalize(line.strip())) is not None


def _drop_chrome_line(match: re.Match[str]) -> int | str:
    return "" if is_chrome_line(match.group(0)) else 0


def _drop_chrome_tail(mapped: MappedText) -> MappedText:
    for line in _LINE.finditer(mapped.text):
        if CHROME_TAIL.fullmatch(normalize(line.group(0).strip())):
            return mapped.delete_spans([(line.start(), len(mapped.text))])
    return mapped


def _tidy_whitespace(mapped: MappedText) -> MappedText:
    mapped = mapped.sub(_EDGE_SPACES, lambda m: "")
    mapped = mapped.sub(_INNER_SPACES, lambda m: " ")
    mapped = mapped.sub(_BLANK_LINES, lambda m: "\n")
    return mapped.sub(_DOC_EDGES, lambda m: "")


def _drop_repeated_paragraphs(mapped: MappedText) -> CleanText:
    """Drop a paragraph whose text reappears within the next few paragraphs (leads, 摘要 summaries)."""
    lines = [(m.start(), m.end()) for m in _LINE.finditer(mapped.text) if m.end() > m.start()]
    keys = [normalize(mapped.text[start:end].strip()) for start, end in lines]
    dropped: list[tuple[int, int]] = []
    for i, key in enumerate(keys):
        body = _LEAD_LABEL.sub("", key)
        following = "".join(keys[i + 1 : i + 1 + _REPEAT_LOOKAHEAD])
        if len(body) >= _MIN_REPEATED_CHARS and body in following:
            dropped.append(lines[i])
    breaks, removed = [], 0
    for start, end in dropped:
        breaks.append(start - removed)
        removed += end - start
    cleaned = mapped.delete_spans(dropped)
    if dropped and cleaned.text.endswith("\n"):
        cleaned = cleaned.sub(_DOC_EDGES, lambda m: "")
    return CleanText(cleaned, tuple(breaks))
