"""Files in, readable text out: one extractor per format, chosen by the file's suffix and checked against its content.

Every extractor returns an `Extracted`: the text that citation offsets point into (`original`) and the readable
content mapped into it (`content`, a `text.mapped.MappedText`), which `text.clean.clean` then cleans like any
other document. For text and web pages `original` is the decoded file itself, so a citation is an offset into
the file; for PDF and Word it is the text extracted from the file (what /api/documents/<doc_id> returns as
`extracted_text`), with `page_starts` marking where each PDF page begins in it.

An unreadable file raises `ExtractionError` whose message is the reason the build lists it under "skipped".
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from text.mapped import MappedText

# suffix → format; the format names the extractor and is stored with the document
FORMATS = {
    ".txt": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
    ".pdf": "pdf", ".docx": "docx",
}
PAGINATED = ("pdf",)


class ExtractionError(ValueError):
    """The file cannot be turned into text; the message is the reason, in words a user can act on."""


@dataclass(frozen=True)
class Limits:
    max_pages: int = 2000  # a PDF with more pages is skipped (QA_MAX_PAGES / --max-pages)
    ocr: bool = True  # OCR pages without a text layer when Tesseract is installed
    ocr_languages: str = "chi_sim+chi_tra+eng"


@dataclass(frozen=True)
class Extracted:
    original: str  # citation offsets point into this: the decoded file, or the text extracted from a PDF / .docx
    content: MappedText  # the readable text, each character mapped to its span of `original`
    format: str  # a value of FORMATS
    page_starts: tuple[int, ...] = ()  # offset in `original` where page 1, 2, … begins; empty: not paginated
    title: str | None = None  # a title the file itself declares (HTML <title>, PDF or .docx metadata)

    def page_of(self, offset: int) -> int | None:
        """The 1-based page that `original[offset]` is on, or None for a document without pages."""
        return page_of(self.page_starts, offset)


def page_of(page_starts: tuple[int, ...] | list[int], offset: int) -> int | None:
    if not page_starts:
        return None
    return max(1, bisect_right(page_starts, offset))


def extract(data: bytes, format: str, limits: Limits = Limits()) -> Extracted:
    """The file's text by its format (a value of FORMATS); ExtractionError if it cannot be read as one."""
    if format == "pdf":
        from extract.pdf import extract_pdf

        return extract_pdf(data, limits)
    if format == "docx":
        from extract.docx import extract_docx

        return extract_docx(data, limits)
    text = decode_text(data)
    if format == "html":
        from extract.html import extract_html

        return extract_html(text)
    return Extracted(text, MappedText.identity(text), format)


def decode_text(data: bytes) -> str:
    from text.decode import UndecodableError, decode_bytes

    try:
        return decode_bytes(data)
    except UndecodableError as error:
        raise ExtractionError(str(error)) from None


def sniff_format(data: bytes) -> str | None:
    """What the bytes are, whatever the name says: "pdf", "docx", "text", or None (none of those)."""
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "docx" if b"word/" in data[:65536] or _zip_has(data, "word/document.xml") else None
    try:
        decode_text(data)
    except ExtractionError:
        return None
    return "text"


def _zip_has(data: bytes, member: str) -> bool:
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return member in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
