"""Walk a corpus folder: decode every supported file, and say why each other file was skipped.

Links: folder links are never followed (a link to a parent would loop, others show the same files twice);
file links are read when their target is inside the corpus (the author put that name there) and skipped
when it is outside, so a corpus cannot pull in files from elsewhere on the machine.
"""
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
DEFAULT_MAX_MB = 50.0
MAX_MB_VARIABLE = "QA_MAX_FILE_MB"
DEFAULT_MAX_BYTES = int(DEFAULT_MAX_MB * 1024 * 1024)


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


def max_file_bytes(megabytes: float | None = None) -> int:
    """The size cap: `megabytes` if given, else $QA_MAX_FILE_MB, else DEFAULT_MAX_MB."""
    value = megabytes if megabytes is not None else float(os.environ.get(MAX_MB_VARIABLE) or DEFAULT_MAX_MB)
    if value <= 0:
        raise ValueError(f"the file size cap must be a positive number of MB, not {value}")
    return int(value * 1024 * 1024)


def _walk(root: Path, report: CorpusReport) -> Iterator[Path]:
    """Regular files under root in a stable order; everything else is reported (see the module docstring)."""

    def on_error(error: OSError) -> None:
        report.skip(os.path.relpath(error.filename, root), f"unreadable folder: {error.strerror}")

    for folder, dirs, files in os.walk(root, onerror=on_error):
        dirs.sort()
        for name in [d for d in dirs if Path(folder, d).is_symlink()]:
            report.skip(Path(folder, name).relative_to(root).as_posix(), "link to a folder, not followed")
        for name in sorted(files):
            path = Path(folder, name)
            reason = _not_a_corpus_file(path, root)
            if reason:
                report.skip(path.relative_to(root).as_posix(), reason)
            else:
                yield path


def _not_a_corpus_file(path: Path, root: Path) -> str | None:
    if not path.is_file():
        return "not a regular file (broken link or special file)"
    if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
        return "link to a file outside the corpus, not followed"
    return None


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
