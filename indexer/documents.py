"""Walk a corpus folder: decode every supported file, and say why each other file was skipped."""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from text.clean import CleanText, clean
from text.decode import UndecodableError, decode_bytes
from text.normalize import Language, detect_language

SUPPORTED_SUFFIXES = {".txt": False, ".md": False, ".markdown": False, ".html": True, ".htm": True}
MANIFEST_NAME = "manifest.json"  # optional: {"<doc_id>": {"title": …, "url": …, "date": …}}
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Document:
    doc_id: str  # path relative to the corpus root, with forward slashes
    title: str
    language: Language
    sha256: str
    original: str  # the decoded file, the text every offset points into
    clean: CleanText
    url: str | None = None
    date: str | None = None


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class CorpusReport:
    skipped: list[Skipped] = field(default_factory=list)

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append(Skipped(path, reason))


def iter_documents(root: Path, report: CorpusReport, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Document]:
    overrides = _read_manifest(root, report)
    for path in _walk(root, report):
        doc_id = path.relative_to(root).as_posix()
        if doc_id == MANIFEST_NAME:
            continue
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            report.skip(doc_id, f"unsupported file type {path.suffix or '(none)'}")
            continue
        document = _read_document(path, doc_id, overrides.get(doc_id, {}), report, max_bytes)
        if document is not None:
            yield document


def _walk(root: Path, report: CorpusReport) -> Iterator[Path]:
    """Files under root in a stable order; unreadable folders are reported, symlinked folders not followed."""

    def on_error(error: OSError) -> None:
        report.skip(os.path.relpath(error.filename, root), f"unreadable folder: {error.strerror}")

    for folder, dirs, files in os.walk(root, onerror=on_error):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder, name)
            if path.is_file():
                yield path
            else:
                report.skip(path.relative_to(root).as_posix(), "not a regular file (broken link or special file)")


def _read_document(path: Path, doc_id: str, meta: dict, report: CorpusReport, max_bytes: int) -> Document | None:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            report.skip(doc_id, f"too large ({size} bytes > {max_bytes})")
            return None
        data = path.read_bytes()
        original = decode_bytes(data)
    except OSError as error:
        report.skip(doc_id, f"unreadable: {error.strerror or error}")
        return None
    except UndecodableError as error:
        report.skip(doc_id, str(error))
        return None
    cleaned = clean(original, is_html=SUPPORTED_SUFFIXES[path.suffix.lower()])
    if not cleaned.text:
        report.skip(doc_id, "no text left after cleaning")
        return None
    return Document(
        doc_id=doc_id,
        title=meta.get("title") or _title(original, cleaned.text),
        language=detect_language(cleaned.text),
        sha256=hashlib.sha256(data).hexdigest(),
        original=original,
        clean=cleaned,
        url=meta.get("url"),
        date=meta.get("date"),
    )


def _title(original: str, cleaned: str) -> str:
    """The `title:` of an HTML-comment header (000), else the first line of the cleaned text."""
    if original.lstrip().startswith("<!--"):
        header = original[: original.find("-->") + 3]
        for line in header.splitlines():
            key, _, value = line.strip().partition(":")
            if key.strip().lower() == "title" and value.strip():
                return value.strip()
    return cleaned.split("\n", 1)[0][:200]


def _read_manifest(root: Path, report: CorpusReport) -> dict[str, dict]:
    path = root / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        report.skip(MANIFEST_NAME, f"ignored, not valid JSON: {error}")
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}
