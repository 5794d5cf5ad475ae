"""A tolerant HTML tree over the stdlib's `html.parser`, every element and text run kept with its offsets in the file.

`html.parser` tokenizes with character references left unresolved, so each text run and entity keeps its exact
span of the source (a piece: text, start, end); an entity's piece holds its unescaped text over the entity's
span. The builder closes what HTML closes implicitly: a <p> at the next block, an <li>, <dd>/<dt>, cell, row or
table section at the next of its kind (unless a scope boundary such as a table comes first), and <head> at the
first element that cannot be in it. It also collects the page's <title> text and its og:title. Nodes carry
the slots that extract.html weighs them with.
"""
from __future__ import annotations

import html
import re
from collections import Counter
from html.parser import HTMLParser

Piece = tuple[str, int, int]  # text, start, end in the file (see MappedText.from_pieces)

VOID = frozenset("area base br col embed hr img input keygen link meta param source track wbr".split())
BLOCK = frozenset(
    "address article aside blockquote body br caption center dd details dialog div dl dt fieldset figcaption figure"
    " footer form h1 h2 h3 h4 h5 h6 header hgroup hr html li main menu nav ol p pre section summary table tbody td"
    " tfoot th thead tr ul".split()
)
CELLS = ("td", "th")
_P_CLOSERS = BLOCK - {"br", "td", "th", "tr", "tbody", "thead", "tfoot", "caption", "body", "html", "dd", "dt"}
_SCOPE = frozenset("table td th caption html template button object".split())
_IMPLIED = {  # a start tag closes these open elements, unless a scope boundary comes first
    "li": (("li",), frozenset(("ul", "ol"))),
    **dict.fromkeys(("dd", "dt"), (("dd", "dt"), frozenset(("dl",)))),
    **dict.fromkeys(CELLS, (CELLS, frozenset(("tr",)))),
    "tr": (("tr",), frozenset()),
    **dict.fromkeys(("tbody", "thead", "tfoot"), (("tr", "tbody", "thead", "tfoot"), frozenset())),
}
_HEAD_CONTENT = frozenset("title meta link style script base noscript template head".split())
_MAX_SCOPE_SCAN = 100


class Node:
    """An element: its tag, attributes and span in the file; children are nodes and text pieces in order."""

    __slots__ = ("tag", "attrs", "parent", "children", "start", "end", "text", "weight", "links", "own", "commas")

    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None, start: int) -> None:
        self.tag, self.attrs, self.parent, self.start, self.end = tag, attrs, parent, start, start
        self.children: list[Node | Piece] = []
        self.text: tuple[int, int] | None = None  # units and commas of the element's own text pieces
        self.weight = self.links = self.own = self.commas = 0  # own, commas: text outside block children

    def nonlink(self) -> int:
        return self.weight - self.links

    def names(self) -> str:
        return f"{self.attrs.get('class', '')} {self.attrs.get('id', '')}".lower()


def parse(source: str) -> TreeBuilder:
    """The tree of `source`, with its title and og:title, all elements closed."""
    builder = TreeBuilder(source)
    builder.feed(source)
    builder.close()
    return builder


class TreeBuilder(HTMLParser):
    """Builds the tree under `root` as `html.parser` reads; `title` and `og_title` collect the page's titles."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)
        self.source = source
        self.line_starts = [0] + [match.end() for match in re.finditer("\n", source)]
        self.root = Node("#root", {}, None, 0)
        self.stack = [self.root]
        self.open: Counter[str] = Counter()
        self.title: list[str] = []
        self.og_title = ""

    def close(self) -> None:
        super().close()
        for node in self.stack:  # still open at the end of the file
            node.end = len(self.source)

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        start = self._offset()
        values = {name: value or "" for name, value in attrs}
        if tag == "meta" and "og:title" in (values.get("property"), values.get("name")):
            self.og_title = values.get("content", "")
        if self.open["head"] and tag not in _HEAD_CONTENT:
            self._close("head", frozenset(), start)
        if tag in _P_CLOSERS:
            self._close("p", _SCOPE, start)
        names, boundaries = _IMPLIED.get(tag, ((), frozenset()))
        for name in names:
            self._close(name, _SCOPE - set(names) | boundaries, start)
        node = Node(tag, values, self.stack[-1], start)
        self.stack[-1].children.append(node)
        if tag in VOID:
            node.end = start + len(self.get_starttag_text() or "")
        else:
            self.stack.append(node)
            self.open[tag] += 1

    def handle_endtag(self, tag: str) -> None:
        self._close(tag, frozenset(), self._offset(), limit=len(self.stack))

    def _close(self, tag: str, boundaries: frozenset[str], at: int, limit: int = _MAX_SCOPE_SCAN) -> None:
        """Close the innermost open `tag` and everything inside it, unless a boundary element comes first."""
        if not self.open[tag]:
            return
        for depth in range(len(self.stack) - 1, max(0, len(self.stack) - 1 - limit), -1):
            name = self.stack[depth].tag
            if name == tag:
                for node in self.stack[depth:]:
                    node.end = at
                    self.open[node.tag] -= 1
                del self.stack[depth:]
                return
            if name in boundaries:
                return

    def parse_marked_section(self, i: int, report: int = 1) -> int:
        """An unknown `<![keyword[` is a bogus comment up to the next ">", as browsers read it, not an error."""
        position = self.getpos()
        try:
            return super().parse_marked_section(i, report)
        except AssertionError:
            self.lineno, self.offset = position  # _markupbase moved them before raising
            end = self.rawdata.find(">", i)
            return -1 if end < 0 else end + 1

    def handle_data(self, data: str) -> None:
        start = self._offset()
        self._text((data, start, start + len(data)))

    def handle_entityref(self, name: str) -> None:
        self._reference(1 + len(name))  # &name, and ; if it follows

    def handle_charref(self, name: str) -> None:
        self._reference(2 + len(name))  # &#name

    def _reference(self, length: int) -> None:
        start = self._offset()
        end = start + length + (self.source[start + length : start + length + 1] == ";")
        self._text((html.unescape(self.source[start:end]), start, end))

    def _text(self, piece: Piece) -> None:
        self.stack[-1].children.append(piece)
        if self.stack[-1].tag == "title" and not self.open["svg"]:
            self.title.append(piece[0])
