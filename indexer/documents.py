"""Walk a corpus folder: every file of a supported format, and why each other file was skipped.

Hidden files and folders (a name starting with '.') are not part of the corpus.
Links: folder links are never followed (a link to a parent would loop, others show the same files twice);
file links are read when their target is inside the corpus (the author put that name there) and skipped
when it is outside, so a corpus cannot pull in files from elsewhere on the machine.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from extract import FORMATS

MANIFEST_NAME = "manifest.json"  # optional: {"<doc_id>": {"title": …, "url": …, "date": …}}
DEFAULT_MAX_MB = 50.0
MAX_MB_VARIABLE = "QA_MAX_FILE_MB"
DEFAULT_MAX_BYTES = int(DEFAULT_MAX_MB * 1024 * 1024)


@dataclass(frozen=True)
class CorpusFile:
    doc_id: str  # path relative to the corpus root, with forward slashes
    path: Path
    format: str  # a value of extract.FORMATS
    meta: dict  # the file's entry in corpus/manifest.json: title, url, date


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class CorpusReport:
    skipped: list[Skipped] = field(default_factory=list)

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append(Skipped(path, reason))


def iter_corpus_files(root: Path, report: CorpusReport) -> Iterator[CorpusFile]:
    """Files of a supported format in a stable order (a folder's files, then its sub-folders, each sorted)."""
    overrides = _read_manifest(root, report)
    for path in _walk(root, report):
        doc_id = path.relative_to(root).as_posix()
        if doc_id == MANIFEST_NAME:
            continue
        format = FORMATS.get(path.suffix.lower())
        if format is None:
            report.skip(doc_id, f"unsupported file type {path.suffix or '(none)'}")
            continue
        yield CorpusFile(doc_id, path, format, overrides.get(doc_id, {}))


def read_corpus(root: Path, report: CorpusReport, max_bytes: int) -> Iterator[tuple[CorpusFile, bytes]]:
    """Every supported file with its bytes; files over the cap or unreadable are reported instead."""
    for file in iter_corpus_files(root, report):
        data = read_file(file, report, max_bytes)
        if data is not None:
            yield file, data


def read_file(file: CorpusFile, report: CorpusReport, max_bytes: int) -> bytes | None:
    """The file's bytes, or None (reported) when it is over the size cap or unreadable."""
    try:
        size = file.path.stat().st_size
        if size > max_bytes:
            report.skip(file.doc_id, f"too large ({size} bytes > {max_bytes})")
            return None
        return file.path.read_bytes()
    except OSError as error:
        report.skip(file.doc_id, f"unreadable: {error.strerror or error}")
        return None


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
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # hidden: .git, uploads being written
        files = [f for f in files if not f.startswith(".")]
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
