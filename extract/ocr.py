"""OCR of a rendered PDF page with the Tesseract command-line tool, as positioned lines for `extract.layout`.

The binary is used rather than a Python binding: nothing to build, and a page that hangs Tesseract can be
killed by a timeout. Tesseract's TSV output gives a box per word; words are grouped into its lines, and the
spaces it puts between CJK characters are removed by `layout.tidy`.
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
from functools import lru_cache

import pypdfium2 as pdfium

from extract.layout import Line, Page, tidy

DPI = 300  # Tesseract's CJK models want glyphs about 30 px high; 300 dpi gives that for 10-point text
PAGE_TIMEOUT_SECONDS = 180


@lru_cache(maxsize=1)
def installed_languages() -> frozenset[str]:
    if shutil.which("tesseract") is None:
        return frozenset()
    listing = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=30)
    return frozenset(line.strip() for line in listing.stdout.splitlines()[1:] if line.strip())


def usable_languages(wanted: str) -> str | None:
    """The installed subset of a Tesseract language string like "chi_sim+chi_tra+eng", or None: no OCR."""
    available = [lang for lang in wanted.split("+") if lang in installed_languages()]
    return "+".join(available) or None


def ocr_page(page: pdfium.PdfPage, languages: str) -> Page:
    width, height = page.get_size()
    scale = DPI / 72
    image = page.render(scale=scale, grayscale=True).to_pil()
    png = io.BytesIO()
    image.save(png, "PNG")
    result = subprocess.run(
        ["tesseract", "-", "-", "-l", languages, "--dpi", str(DPI), "--psm", "3", "tsv"],
        input=png.getvalue(), capture_output=True, timeout=PAGE_TIMEOUT_SECONDS,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},  # OpenMP threads make Tesseract 3x slower on few cores
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode("utf-8", "replace").strip()[-300:])
    return Page(_lines(result.stdout.decode("utf-8", "replace"), scale), width, height)


def _lines(tsv: str, scale: float) -> list[Line]:
    """Tesseract's words grouped into its lines, boxes converted from pixels to points."""
    words: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") == "5" and (row.get("text") or "").strip():
            words.setdefault((row["block_num"], row["par_num"], row["line_num"]), []).append(row)
    lines = []
    for group in words.values():
        left = min(int(w["left"]) for w in group)
        right = max(int(w["left"]) + int(w["width"]) for w in group)
        top = min(int(w["top"]) for w in group)
        bottom = max(int(w["top"]) + int(w["height"]) for w in group)
        text = tidy(" ".join(w["text"] for w in group))
        if text:
            size = (bottom - top) / scale  # glyph height: close enough to the font size for the layout rules
            lines.append(Line(text, left / scale, right / scale, top / scale, bottom / scale, size))
    return lines
