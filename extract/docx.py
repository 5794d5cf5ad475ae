"""Word (.docx) files: the body's paragraphs, headings, list items and tables, in document order.

The package is read with zipfile and its XML with a hardened lxml parser (no entities, no DTD, no
network, lxml's default size limits), not with python-docx: that lets the zip directory be checked for
bombs before anything is inflated, and every inflated part is read through a byte cap because declared
sizes can lie. One block per line: a paragraph, a list item with its marker ("• " or "1. "), a table row
with its cells joined by " | ". Text boxes, headers, footers, footnotes and deleted revisions are left out.
"""
from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO

from lxml import etree

from text.mapped import MappedText

from . import Extracted, ExtractionError, Limits

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MAX_PART_BYTES = 200 * 1024 * 1024  # one inflated XML part (word/document.xml)
MAX_TOTAL_BYTES = 500 * 1024 * 1024  # all members, as declared in the zip directory
MAX_RATIO = 200  # declared inflated / compressed size, for a member larger than RATIO_MIN_BYTES
RATIO_MIN_BYTES = 10 * 1024 * 1024
CELL_SEPARATOR = " | "
BULLET = "• "

_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def extract_docx(data: bytes, limits: Limits) -> Extracted:
    """The text of a .docx file; `limits` is accepted for a uniform signature (Word files have no page limit)."""
    if data.startswith(OLE_MAGIC):
        raise ExtractionError("encrypted or password-protected Word file, or a legacy binary .doc (save it as .docx)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as error:
        raise ExtractionError("not a Word .docx file (not a zip archive)") from error
    with archive:
        _check_directory(archive)
        package = _relationships(archive, "")
        main = package.get("/officeDocument", "word/document.xml")
        root = _parse(archive, main)
        w = root.tag.partition("}")[0] + "}" if root.tag.startswith("{") else ""
        related = _relationships(archive, main)
        numbering = _Numbering(archive, related, w)
        body = root.find(f"{w}body")
        if body is None:
            raise ExtractionError(f"corrupt Word file: {main} has no body")
        # lxml refuses XML nested deeper than 256 elements, so the recursion below stays shallow
        original = "\n".join(line for line in _Blocks(w, numbering).lines(body) if line.strip())
        title = _title(archive, package.get("/core-properties", "docProps/core.xml"))
    return Extracted(original, MappedText.identity(original), "docx", title=title)


def _check_directory(archive: zipfile.ZipFile) -> None:
    total = 0
    for info in archive.infolist():
        total += info.file_size
        if info.file_size > MAX_PART_BYTES and info.filename.endswith((".xml", ".rels")):
            raise ExtractionError(f"Word file too large: {info.filename} would inflate to {info.file_size} bytes")
        if info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ExtractionError(f"suspicious Word file (zip bomb?): {info.filename} is compressed over {MAX_RATIO}:1")
        if info.flag_bits & 0x1:
            raise ExtractionError("encrypted or password-protected Word file")
    if total > MAX_TOTAL_BYTES:
        raise ExtractionError(f"Word file too large: it would inflate to {total} bytes")


def _read(archive: zipfile.ZipFile, name: str) -> bytes | None:
    """A member's bytes, never more than MAX_PART_BYTES whatever the directory declares; None if absent."""
    try:
        member = archive.open(name)
    except KeyError:
        return None
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, OSError) as error:
        raise ExtractionError(f"corrupt Word file: cannot open {name} ({error})") from error
    chunks, size = [], 0
    with member:
        while chunk := _read_chunk(member, name):
            size += len(chunk)
            if size > MAX_PART_BYTES:
                raise ExtractionError(f"Word file too large: {name} inflates to more than {MAX_PART_BYTES} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def _read_chunk(member: IO[bytes], name: str) -> bytes:
    try:
        return member.read(1024 * 1024)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as error:
        raise ExtractionError(f"corrupt Word file: cannot inflate {name} ({error})") from error


def _parse(archive: zipfile.ZipFile, name: str) -> etree._Element:
    data = _read(archive, name)
    if data is None:
        raise ExtractionError(f"not a Word .docx file (no {name} in the archive)")
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as error:
        raise ExtractionError(f"corrupt Word file: {name} is not well-formed XML ({error})") from error


def _parse_optional(archive: zipfile.ZipFile, name: str | None) -> etree._Element | None:
    if name is None:
        return None
    try:
        data = _read(archive, name)
        return None if data is None else etree.fromstring(data, _PARSER)
    except (ExtractionError, etree.XMLSyntaxError):
        return None  # an unreadable side part (core properties, numbering) costs only its extras


def _relationships(archive: zipfile.ZipFile, part: str) -> dict[str, str]:
    """Relationship type (its last path segment, e.g. "/numbering") → target part name, for `part` ("" = package)."""
    folder, base = posixpath.split(part)
    rels = _parse_optional(archive, posixpath.join(folder, "_rels", f"{base}.rels"))
    if rels is None:
        return {}
    targets: dict[str, str] = {}
    for rel in rels.iter(f"{{{_RELS}}}Relationship"):
        kind, target = rel.get("Type", ""), rel.get("Target", "")
        if rel.get("TargetMode") == "External" or not target:
            continue
        name = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        targets.setdefault(kind[kind.rfind("/") :], name)
    return targets


def _title(archive: zipfile.ZipFile, core_part: str) -> str | None:
    core = _parse_optional(archive, core_part)
    if core is None:
        return None
    title = core.find("{http://purl.org/dc/elements/1.1/}title")
    text = " ".join((title.text or "").split()) if title is not None else ""
    return text or None


class _Numbering:
    """List markers: a bullet, or a running number per list and level."""

    def __init__(self, archive: zipfile.ZipFile, related: dict[str, str], w: str) -> None:
        self.w = w
        self.formats: dict[tuple[str, str], str] = {}  # (numId, ilvl) → numFmt
        self.style_num: dict[str, tuple[str, str]] = {}  # paragraph style → (numId, ilvl)
        self.counters: dict[str, list[int]] = {}
        numbering = _parse_optional(archive, related.get("/numbering"))
        if numbering is not None:
            abstract = {
                a.get(f"{w}abstractNumId"): {
                    lvl.get(f"{w}ilvl"): _val(lvl.find(f"{w}numFmt"), w) for lvl in a.iter(f"{w}lvl")
                }
                for a in numbering.iter(f"{w}abstractNum")
            }
            for num in numbering.iter(f"{w}num"):
                levels = abstract.get(_val(num.find(f"{w}abstractNumId"), w), {})
                for ilvl, fmt in levels.items():
                    self.formats[(num.get(f"{w}numId", ""), ilvl or "0")] = fmt
        styles = _parse_optional(archive, related.get("/styles"))
        if styles is not None:
            for style in styles.iter(f"{w}style"):
                num_pr = style.find(f"{w}pPr/{w}numPr")
                if num_pr is not None:
                    self.style_num[style.get(f"{w}styleId", "")] = self._ids(num_pr, "0")

    def _ids(self, num_pr: etree._Element, default_level: str) -> tuple[str, str]:
        return _val(num_pr.find(f"{self.w}numId"), self.w), _val(num_pr.find(f"{self.w}ilvl"), self.w) or default_level

    def marker(self, p_pr: etree._Element | None) -> str:
        if p_pr is None:
            return ""
        num_pr = p_pr.find(f"{self.w}numPr")
        style = _val(p_pr.find(f"{self.w}pStyle"), self.w)
        num_id, ilvl = self._ids(num_pr, "0") if num_pr is not None else self.style_num.get(style, ("", "0"))
        if num_id in ("", "0"):
            return ""
        fmt = self.formats.get((num_id, ilvl), "bullet")
        if fmt in ("bullet", "none", ""):
            return BULLET if fmt == "bullet" else ""
        level = int(ilvl) if ilvl.isdigit() and int(ilvl) < 9 else 0
        counts = self.counters.setdefault(num_id, [0] * 9)
        counts[level] += 1
        counts[level + 1 :] = [0] * (8 - level)
        return f"{counts[level]}. "


def _val(element: etree._Element | None, w: str) -> str:
    return "" if element is None else element.get(f"{w}val", "")


class _Blocks:
    def __init__(self, w: str, numbering: _Numbering) -> None:
        self.w, self.numbering = w, numbering
        self.skip = {f"{w}{tag}" for tag in ("pPr", "rPr", "txbxContent", "del", "moveFrom", "instrText", "delText")}
        self.skip |= {"{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"}

    def lines(self, container: etree._Element) -> Iterator[str]:
        """One line per paragraph or table row, in document order (content controls and the like are entered)."""
        w = self.w
        for child in container:
            if child.tag == f"{w}p":
                text = self.paragraph(child)
                yield self.numbering.marker(child.find(f"{w}pPr")) + text if text else ""
            elif child.tag == f"{w}tbl":
                for row in child.findall(f"{w}tr"):
                    cells = [" ".join(filter(None, self.lines(cell))) for cell in row.findall(f"{w}tc")]
                    yield CELL_SEPARATOR.join(cell for cell in cells if cell)
            elif child.tag in (f"{w}sdt", f"{w}sdtContent", f"{w}customXml", f"{w}ins", f"{w}moveTo"):
                yield from self.lines(child)

    def paragraph(self, p: etree._Element) -> str:
        parts: list[str] = []
        self._runs(p, parts)
        return "".join(parts).replace("\n", " ").strip()

    def _runs(self, element: etree._Element, parts: list[str]) -> None:
        w = self.w
        for child in element:
            tag = child.tag
            if tag == f"{w}t":
                parts.append(child.text or "")
                parts.extend(entity.tail or "" for entity in child)  # text after an unexpanded entity
            elif tag == f"{w}tab":
                parts.append("\t")
            elif tag in (f"{w}br", f"{w}cr"):
                parts.append(" ")
            elif tag in (f"{w}noBreakHyphen", f"{w}softHyphen"):
                parts.append("-" if tag == f"{w}noBreakHyphen" else "")
            elif isinstance(tag, str) and tag not in self.skip:
                self._runs(child, parts)
