"""PDF → text: the text layer through PDFium (pypdfium2), Tesseract OCR for pages without one.

Chosen by measurement on Chromium-printed PDFs (tests/fixtures/make_pdf_fixtures.py; 2 cores). Chromium embeds
Noto CJK, its default CJK font here, as Type 3 fonts; WenQuanYi (the fixtures' font) as TrueType:

    extractor         Noto: Kangxi/compat  CJK chars lost  | WenQuanYi: all correct?  | 193-page zh PDF
    pypdf 7.1.0       465 of 4506          25              | yes                      |  30 pages/s
    pdfminer.six      465 of 4506          25              | yes                      |  19 pages/s
    pypdfium2 5.15.2  0 (4 real ones)      0               | yes                      | 272 pages/s
    this module: pypdfium2 + line boxes + layout                                       ~160 pages/s
    OCR (Tesseract 5, chi_sim+chi_tra+eng, 300 dpi, 1 thread): ~10 s for a full page of Chinese

None put spaces between CJK characters; pdfminer.six's layout analysis interleaved the Noto two-column page's
columns (pypdf and PDFium kept them in order). PDFium's own line breaks and char
boxes feed `extract.layout`, which joins wrapped lines and drops running headers. PDFium merges a line ending
in a hyphen with the next and marks the hyphen U+FFFE: split back into two lines here.
"""
from __future__ import annotations

import re
import subprocess
import threading

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from extract import Extracted, ExtractionError, Limits
from extract.layout import Line, Page, assemble, drop_running_lines, tidy
from extract.ocr import ocr_page, usable_languages
from text.ideographs import unify_ideographs
from text.mapped import MappedText

_PDFIUM = threading.Lock()  # PDFium is not thread-safe: one document at a time per process
_NOT_A_TITLE = re.compile(
    r"(?:microsoft (?:word|powerpoint|excel) - .*|untitled.*|document\d*"
    r"|.*\.(?:docx?|pdf|pptx?|xlsx?|html?|txt|tex|indd|dvi))",
    re.IGNORECASE,
)


def extract_pdf(data: bytes, limits: Limits) -> Extracted:
    if b"%PDF" not in data[:1024]:
        raise ExtractionError("not a PDF file (no %PDF header at the start)")
    with _PDFIUM:
        pages, missing_text, title = _read(data, limits)
    text, starts = assemble(drop_running_lines(pages))
    if not text.strip():
        raise ExtractionError(missing_text or "no text found in the PDF")
    return Extracted(text, MappedText.identity(text), "pdf", tuple(starts), title)


def _read(data: bytes, limits: Limits) -> tuple[list[Page], str | None, str | None]:
    """The pages' lines, why text may be missing, and the metadata title."""
    pdf = _open(data)
    try:
        count = len(pdf)
        if count == 0:
            raise ExtractionError("the PDF has no pages")
        if count > limits.max_pages:
            raise ExtractionError(f"has {count} pages, more than the limit of {limits.max_pages} (QA_MAX_PAGES)")
        pages, missing_text = _read_pages(pdf, limits)
        return pages, missing_text, _title(pdf.get_metadata_dict().get("Title", ""))
    finally:
        pdf.close()


def _open(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        if getattr(error, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            raise ExtractionError("the PDF is encrypted (password-protected); save an unprotected copy") from error
        if getattr(error, "err_code", None) == pdfium_c.FPDF_ERR_SECURITY:
            raise ExtractionError("the PDF uses an unsupported encryption scheme") from error
        raise ExtractionError("the PDF is damaged or truncated and cannot be opened") from error


def _read_pages(pdf: pdfium.PdfDocument, limits: Limits) -> tuple[list[Page], str | None]:
    """Every page's lines, pages without a text layer OCRed when possible; and why text may be missing."""
    languages = usable_languages(limits.ocr_languages) if limits.ocr else None
    pages: list[Page] = []
    missing: str | None = None
    for index in range(len(pdf)):
        try:
            page = pdf[index]
        except pdfium.PdfiumError:  # a damaged page: the others may still be readable
            pages.append(Page([], 0.0, 0.0))
            continue
        try:
            layer = _text_layer(page)
            if layer.lines or not _has_images(page):
                pages.append(layer)
            elif languages is None:
                pages.append(layer)
                missing = ("no text layer and OCR is turned off" if not limits.ocr else
                           "no text layer and OCR is unavailable (install tesseract-ocr with the "
                           f"{limits.ocr_languages.replace('+', ', ')} language data)")
            else:
                try:
                    pages.append(ocr_page(page, languages))
                    missing = "no text found, OCR produced nothing"
                except (OSError, RuntimeError, subprocess.TimeoutExpired) as error:
                    pages.append(layer)
                    missing = f"no text layer and OCR failed: {error}"
        finally:
            page.close()
    return pages, missing


def _has_images(page: pdfium.PdfPage) -> bool:
    return any(True for _ in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=2))


def _text_layer(page: pdfium.PdfPage) -> Page:
    width, height = page.get_size()
    textpage = page.get_textpage()
    try:
        count = textpage.count_chars()
        text = textpage.get_text_range(0, count) if count else ""
        if len(text) != count:  # surrogate pairs: one character per char index instead
            text = "".join(chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i) or 0xFFFD) for i in range(count))
        lines = []
        for match in re.finditer(r"[^\r\n\ufffe]+\ufffe?", text):
            line = _line(textpage, match.start(), match.end(), match.group(), height)
            if line is not None:
                lines.append(line)
        return Page(lines, width, height)
    finally:
        textpage.close()


def _line(textpage: pdfium.PdfTextPage, start: int, end: int, raw: str, page_height: float) -> Line | None:
    """A line of the text layer with the box of its first and last visible characters (y downwards)."""
    text = unify_ideographs(tidy(_pair_surrogates(raw.replace("\ufffe", "-"))))
    if not text:
        return None
    visible = [i for i in range(start, end) if not raw[i - start].isspace()]
    first, last = visible[0], visible[-1]
    l0, b0, r0, t0 = textpage.get_charbox(first, loose=True)
    l1, b1, r1, t1 = textpage.get_charbox(last, loose=True)
    size = pdfium_c.FPDFText_GetFontSize(textpage.raw, first) or (t0 - b0)
    return Line(text, min(l0, l1), max(r0, r1), page_height - max(t0, t1), page_height - min(b0, b1), size)


def _pair_surrogates(raw: str) -> str:
    """Characters outside the BMP (𫚭) come as two char indices, so as two surrogates: join them into one
    character (a lone one becomes U+FFFD). Boxes are still looked up by char index, on the unjoined text."""
    return raw.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _title(raw: str) -> str | None:
    title = " ".join((raw or "").split())
    if not title or _NOT_A_TITLE.fullmatch(title):
        return None
    return title
