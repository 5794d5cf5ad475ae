"""Bad PDFs and Word files never stop a build: each is skipped with its reason, the rest is indexed, and a file
that can never be read is remembered, not read again by the next build."""
from __future__ import annotations

import io
import re
import shutil
import zipfile
from pathlib import Path

import pypdf

from conftest import ROOT
from indexer.build import build_index

PDF_FIXTURES = ROOT / "tests" / "fixtures" / "pdf"


def _pdf(writer: pypdf.PdfWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _encrypted() -> bytes:
    writer = pypdf.PdfWriter(clone_from=PDF_FIXTURES / "en_hyphens.pdf")
    writer.encrypt(user_password="secret", owner_password="owner")
    return _pdf(writer)


def _pages(count: int) -> bytes:
    writer = pypdf.PdfWriter()
    for _ in range(count):
        writer.add_blank_page(200, 200)
    return _pdf(writer)


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            for _ in range(300):
                member.write(bytes(1 << 20))
    return buffer.getvalue()


BAD_FILES = {
    "encrypted.pdf": (_encrypted, "password-protected"),
    "truncated.pdf": (lambda: (PDF_FIXTURES / "zh_hant.pdf").read_bytes()[:20000], "damaged or truncated"),
    "zero-pages.pdf": (lambda: _pages(0), "cannot be opened"),
    "5000-pages.pdf": (lambda: _pages(5000), "more than the limit of 2000"),
    "not-a-pdf.pdf": (lambda: "只是一段文字".encode(), "not a PDF"),
    "blank-page.pdf": (lambda: _pages(1), "no text"),
    "not-a-zip.docx": (lambda: b"plain bytes, not a zip archive", "not a zip"),
    "zip-bomb.docx": (_zip_bomb, "too large|zip bomb"),
    "legacy.docx": (lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "encrypted or password-protected"),
}


def test_every_bad_file_is_skipped_with_its_reason_and_the_rest_is_indexed(tmp_path: Path, embedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(ROOT / "corpus" / "002_88511f47bc2856da.txt", corpus)
    shutil.copy(PDF_FIXTURES / "zh_hant.pdf", corpus)
    for name, (make, _) in BAD_FILES.items():
        (corpus / name).write_bytes(make())
    manifest = build_index(corpus, tmp_path / "index", embedder, progress=False).manifest
    reasons = {s["path"]: s["reason"] for s in manifest["skipped"]}
    assert set(reasons) == set(BAD_FILES)
    for name, (_, expected) in BAD_FILES.items():
        assert re.search(expected, reasons[name]), (name, reasons[name])
    assert sorted(manifest["corpus"]["files"]) == ["002_88511f47bc2856da.txt", "zh_hant.pdf"]

    again = build_index(corpus, tmp_path / "index", embedder, progress=False).manifest
    assert again["work"]["files_processed"] == 0  # the failures were remembered with their reasons
    assert {s["path"]: s["reason"] for s in again["skipped"]} == reasons
