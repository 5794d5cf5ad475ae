"""The passage store: documents, passages and their offsets in one SQLite file (row id = vector id)."""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from indexer.documents import Document
from indexer.passages import Passage

_SCHEMA = """
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY, title TEXT NOT NULL, language TEXT NOT NULL, sha256 TEXT NOT NULL,
    url TEXT, date TEXT, original TEXT NOT NULL, clean_text TEXT NOT NULL
);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(doc_id), ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL, end INTEGER NOT NULL, clean_start INTEGER NOT NULL, clean_end INTEGER NOT NULL,
    text TEXT NOT NULL, folded TEXT NOT NULL, language TEXT NOT NULL
);
CREATE INDEX passages_by_doc ON passages(doc_id, ordinal);
"""


@dataclass(frozen=True)
class StoredPassage:
    id: int
    doc_id: str
    title: str
    start: int
    end: int
    clean_start: int
    clean_end: int
    text: str
    folded: str  # fold_script(text): what the dense model embedded and keyword matching reads
    language: str


@dataclass(frozen=True)
class StoredDocument:
    doc_id: str
    title: str
    language: str
    sha256: str
    url: str | None
    date: str | None
    clean_text: str
    original_length: int


class StoreWriter:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.executescript(_SCHEMA)
        self.passage_count = 0

    def add(self, document: Document, passages: list[Passage], folded: list[str]) -> list[int]:
        """Store a document and its passages (with their script-folded texts); returns the passages' ids."""
        self._db.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (document.doc_id, document.title, document.language, document.sha256, document.url,
             document.date, document.original, document.clean.text),
        )
        ids = list(range(self.passage_count, self.passage_count + len(passages)))
        self._db.executemany(
            "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(i, p.doc_id, p.ordinal, p.start, p.end, p.clean_start, p.clean_end, p.text, f, document.language)
             for i, p, f in zip(ids, passages, folded)],
        )
        self.passage_count += len(passages)
        return ids

    def iter_folded(self, batch_size: int) -> Iterator[list[str]]:
        """All passages' folded texts in id order, a batch at a time (so embedding never holds the corpus)."""
        self._db.commit()
        for first in range(0, self.passage_count, batch_size):
            rows = self._db.execute(
                "SELECT folded FROM passages WHERE id >= ? AND id < ? ORDER BY id", (first, first + batch_size)
            ).fetchall()
            yield [row[0] for row in rows]

    def close(self) -> None:
        self._db.commit()
        self._db.close()


class StoreReader:
    """Read-only. One connection, opened when the index is opened and shared by request threads under a
    lock: it keeps the file open, so a retriever still serving requests keeps working even after a later
    publish has deleted its build (an unlinked file stays readable while open). Queries take ~1 ms."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        # every passage's language, in memory (fusion weighs each candidate by it): 8 bytes a passage
        self._languages = [row[0] for row in self._query("SELECT language FROM passages ORDER BY id")]
        self.passage_count = len(self._languages)

    def _query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def passages(self, ids: list[int]) -> dict[int, StoredPassage]:
        rows = self._rows(
            "SELECT p.id, p.doc_id, d.title, p.start, p.end, p.clean_start, p.clean_end, p.text, p.folded, p.language "
            "FROM passages p JOIN documents d USING (doc_id) WHERE p.id IN ({marks})",
            ids,
        )
        return {row[0]: StoredPassage(*row) for row in rows}

    def _rows(self, query: str, ids: list[int]) -> list[tuple]:
        if not ids:
            return []
        return self._query(query.format(marks=",".join("?" * len(ids))), [int(i) for i in ids])

    def languages(self, ids: list[int]) -> dict[int, str]:
        return {i: self._languages[i] for i in ids}

    def document(self, doc_id: str) -> StoredDocument | None:
        rows = self._query(
            "SELECT doc_id, title, language, sha256, url, date, clean_text, length(original) "
            "FROM documents WHERE doc_id = ?",
            (doc_id,),
        )
        return StoredDocument(*rows[0]) if rows else None

    def original(self, doc_id: str) -> str | None:
        rows = self._query("SELECT original FROM documents WHERE doc_id = ?", (doc_id,))
        return rows[0][0] if rows else None

    def check(self) -> None:
        """Raise sqlite3.DatabaseError if the file is damaged."""
        result = self._query("PRAGMA quick_check")[0][0]
        if result != "ok":
            raise sqlite3.DatabaseError(f"passage store failed its integrity check: {result}")
