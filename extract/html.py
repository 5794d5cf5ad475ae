"""Web pages: the main content of a decoded HTML file, every character mapped to its span of the file.

The page is parsed into a tree with source offsets by extract.html_tree. Chrome goes (scripts, nav, aside,
page-level header/footer, hidden elements, chrome roles; forms and elements whose class/id says nav, sidebar,
comment, share, ad, cookie … unless they hold half the page's text). The main container is the smallest
<article>/<main>/role=main holding most of the text, else the readability-style winner: a block's own text
scores 1 + commas + length/50 (at most 3) for its container and half for the next one up, times 1 - link
density, and the winner grows while its parent adds little text (a title, a byline). Link-heavy blocks inside
it go. Blocks become line breaks (empty spans at the tag), a row's cells are joined by " | ", whitespace runs
collapse to a space (to nothing where a line break falls between CJK characters).
"""
from __future__ import annotations

import re

from text.mapped import MappedText

from . import Extracted
from .html_tree import BLOCK, CELLS, Node, Piece, parse

DROPPED = frozenset(
    "script style noscript template svg iframe button nav aside head title select textarea object embed canvas"
    " audio video dialog map".split()
)
DROPPED_ROLES = frozenset("navigation banner contentinfo complementary search menu menubar toolbar dialog".split())
PARAGRAPHS = frozenset("p pre li dd dt blockquote figcaption caption summary h1 h2 h3 h4 h5 h6".split())
LINK_BLOCKS = frozenset("ul ol dl div section table".split())  # dropped from the main container when mostly links

_UNLIKELY = re.compile(
    r"(?:^|[-_])(?:nav|navbar|navigation|menu|sidebar|footer|comments?|share|sharing|social|breadcrumbs?|crumbs?"
    r"|related|recommend\w*|advert\w*|ads?|adv|banner|cookies?|popup|modal|subscribe|newsletter|widget|toolbar"
    r"|copyright|hot)(?:[-_]|$)|^(?:related|recommend|breadcrumb|sidebar|footer|cookie|advert|share|social)"
)
_LIKELY = re.compile(r"article|content|entry|main|post|story|text|body|detail")
_HIDDEN_STYLE = re.compile(r"display:\s*none|visibility:\s*hidden")
_WIDE = re.compile(
    "[\u2e80-\u2fff\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003134f]"
)
_WS = " \t\n\r\f\v\xa0\u3000"
# whitespace to collapse or drop: edge runs, longer runs, anything but a single inner " " (that is copied as is)
_COLLAPSED = re.compile(rf"^[{_WS}]+|[{_WS}]+$|[{_WS}]{{2,}}|[{_WS[1:]}]")
MIN_PARAGRAPH = 10  # units of own text for a block to count as a paragraph
LIKELY_BONUS = 25
CELL_SEPARATOR = " | "
COMMAS = ",，、;；。"


def extract_html(text: str) -> Extracted:
    builder = parse(text)
    root = builder.root
    _prune(root, None)
    _measure(root)
    _prune(root, root.nonlink())
    main = _main_container(root, _measure(root))
    _drop_link_blocks(main)
    content = MappedText.from_pieces(_Writer().write(main))
    title = " ".join("".join(builder.title).split()) or " ".join(builder.og_title.split())
    return Extracted(text, content, "html", title=title or None)


def _prune(root: Node, total: int | None) -> None:
    """Drop chrome elements; given `total` (the page's non-link text), forms and elements named like chrome."""
    stack = [(root, False)]
    while stack:
        node, sectioned = stack.pop()
        kept: list[Node | Piece] = []
        for child in node.children:
            if isinstance(child, Node):
                if _is_chrome(child, sectioned) if total is None else _is_named_chrome(child, total):
                    continue
                stack.append((child, sectioned or child.tag in ("article", "main", "section") or _is_main(child)))
            kept.append(child)
        node.children = kept


def _is_chrome(node: Node, sectioned: bool) -> bool:
    if node.tag in DROPPED or (node.tag in ("header", "footer") and not sectioned):
        return True
    attrs = node.attrs
    return bool(attrs) and (
        attrs.get("role", "").strip().lower() in DROPPED_ROLES
        or "hidden" in attrs
        or attrs.get("aria-hidden", "").strip().lower() == "true"
        or _HIDDEN_STYLE.search(attrs.get("style", "").lower()) is not None
    )


def _is_named_chrome(node: Node, total: int) -> bool:
    if node.tag in ("html", "body", "article", "main") or 2 * node.nonlink() >= total > 0:
        return False
    return node.tag == "form" or any(_UNLIKELY.search(name) for name in node.names().split())


def _is_main(node: Node) -> bool:
    attrs = node.attrs
    return node.tag in ("article", "main") or attrs.get("role") == "main" or attrs.get("itemprop") == "articleBody"


def _measure(root: Node) -> list[Node]:
    """Weigh every element (text units, link units, own text and commas); returns them in document order."""
    nodes, stack = [], [root]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(child for child in reversed(node.children) if isinstance(child, Node))
    for node in reversed(nodes):
        if node.text is None:
            texts = "".join(child[0] for child in node.children if isinstance(child, tuple))
            node.text = (_units(texts), sum(texts.count(comma) for comma in COMMAS)) if texts else (0, 0)
        node.weight = node.own = node.text[0]
        node.commas, node.links = node.text[1], 0
        for child in node.children:
            if isinstance(child, Node):
                node.weight += child.weight
                node.links += child.links
                if child.tag not in BLOCK:
                    node.own += child.own
                    node.commas += child.commas
        if node.tag == "a":
            node.links = node.weight
    return nodes


def _units(text: str) -> int:
    """Words plus wide characters: a CJK character (3 UTF-8 bytes) counts like a word, at C speed."""
    return (len(text.encode("utf-8", "surrogatepass")) - len(text)) // 2 + len(text.split())


def _main_container(root: Node, nodes: list[Node]) -> Node:
    total = root.nonlink()
    semantic = [node for node in nodes if _is_main(node) and node.nonlink() * 10 >= total * 3 > 0]
    if semantic:
        biggest = max(semantic, key=Node.nonlink)
        inner = [node for node in semantic if node.nonlink() * 10 >= biggest.nonlink() * 7 and _within(node, biggest)]
        return min(inner, key=Node.nonlink)
    scores: dict[Node, float] = {}
    for node in nodes:
        if node.own >= MIN_PARAGRAPH and node.tag in BLOCK and node.parent is not None:
            score = 1 + node.commas + min(node.own / 50, 3)
            container = node.parent if node.tag in PARAGRAPHS else node
            scores[container] = scores.get(container, 0) + score
            if container.parent is not None:
                scores[container.parent] = scores.get(container.parent, 0) + score / 2
    if not scores:
        return root
    best = max(
        scores,
        key=lambda node: (scores[node] + LIKELY_BONUS * bool(_LIKELY.search(node.names())))
        * (1 - node.links / max(node.weight, 1)),
    )
    while best.tag not in CELLS and best.parent is not None and best.parent.tag not in ("#root", "html", "body"):
        if best.parent.nonlink() > best.nonlink() * 1.2 + 40:
            break
        best = best.parent
    return best


def _within(node: Node, ancestor: Node) -> bool:
    current: Node | None = node
    while current is not None and current is not ancestor:
        current = current.parent
    return current is ancestor


def _drop_link_blocks(main: Node) -> None:
    """Drop blocks inside the main container that are mostly links: related-article lists, tag clouds."""
    stack = [main]
    while stack:
        node = stack.pop()
        kept: list[Node | Piece] = []
        for child in node.children:
            if isinstance(child, Node):
                density = child.links / max(child.weight, 1)
                if child.tag in LINK_BLOCKS and (density > 0.5 or (density > 0.3 and child.nonlink() < 25)):
                    continue
                stack.append(child)
            kept.append(child)
        node.children = kept


class _Writer:
    """Serialize a subtree to pieces: blocks on their own lines, whitespace collapsed, table rows joined."""

    def __init__(self) -> None:
        self.pieces: list[Piece] = []
        self.last = ""  # the last character written: "" at the start, "\n" after a break
        self.pending: tuple[int, int, bool] | None = None  # a whitespace run: start, end, holds a line break
        self.separator: int | None = None  # where a cell began that must be set off from the cell before it
        self.pre = 0
        self.rows = [0]  # cells begun in each open table row

    def write(self, main: Node) -> list[Piece]:
        stack: list[tuple[Node | Piece, bool]] = [(main, False)]
        while stack:
            item, leaving = stack.pop()
            if isinstance(item, tuple):
                self._text(*item)
                continue
            self.pre += (item.tag == "pre") * (-1 if leaving else 1)
            if item.tag in CELLS and leaving:
                self.pending = None
            elif item.tag in CELLS:
                self.separator = item.start if self.rows[-1] else None
                self.rows[-1] += 1
            elif item.tag in BLOCK:
                self._break(item.end if leaving else item.start)
            if item.tag == "tr" and leaving and len(self.rows) > 1:
                self.rows.pop()
            elif item.tag == "tr" and not leaving:
                self.rows.append(0)
            if not leaving:
                stack.append((item, True))
                stack.extend((child, False) for child in reversed(item.children))
        while self.pieces and self.pieces[-1][0] == "\n":
            self.pieces.pop()
        return self.pieces

    def _break(self, at: int) -> None:
        self.pending = self.separator = None
        if self.last not in ("", "\n"):
            self._emit("\n", at, at)

    def _text(self, text: str, start: int, end: int) -> None:
        if self.pre:
            self._flush(text[:1])
            self._emit(text, start, end)
        elif end - start != len(text):  # a character reference
            if text.strip(_WS):
                self._flush(text[0])
                self._emit(text, start, end)
            else:
                self._space(start, end, False)
        else:
            done = 0
            for match in _COLLAPSED.finditer(text):
                if match.start() > done:
                    self._flush(text[done])
                    self._emit(text[done : match.start()], start + done, start + match.start())
                self._space(start + match.start(), start + match.end(), "\n" in match.group())
                done = match.end()
            if done < len(text):
                self._flush(text[done])
                self._emit(text[done:], start + done, end)

    def _space(self, start: int, end: int, line_break: bool) -> None:
        if self.pending:
            start, line_break = self.pending[0], self.pending[2] or line_break
        self.pending = (start, end, line_break)

    def _flush(self, following: str) -> None:
        """Write the pending space (or cell separator) that comes before the character `following`."""
        if self.separator is not None and self.last not in ("", "\n"):
            self._emit(CELL_SEPARATOR, self.separator, self.separator)
            self.pending = None
        if self.pending and self.last not in ("", "\n"):
            start, end, line_break = self.pending
            if not (line_break and _WIDE.match(self.last) and _WIDE.match(following)):
                self._emit(" ", start, end)
        self.pending = self.separator = None

    def _emit(self, text: str, start: int, end: int) -> None:
        if text:
            self.pieces.append((text, start, end))
            self.last = text[-1]
