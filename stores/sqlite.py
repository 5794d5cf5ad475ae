"""The embedded store's records: documents, passages and their offsets in one SQLite file (row id = vector id)."""
from __future__ import annotations

import functools
import json
import shutil
import sqlite3
import threading
from pathlib import Path

import numpy as np

from indexer.process import ProcessedDocument
from stores.contract import DOCUMENT_LISTING, EXTRACTED_FORMATS, DocumentMeta, StoredDocument, StoredPassage

# documents.page_starts: JSON list of the cleaned-text offsets where each page begins ([] when not paginated);
# documents.version: what the build wrote it from (indexer/build.py), so the next build can start from this file
_SCHEMA = """
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY, title TEXT NOT NULL, language TEXT NOT NULL, sha256 TEXT NOT NULL,
    url TEXT, date TEXT, format TEXT NOT NULL, original TEXT NOT NULL, clean_text TEXT NOT NULL,
    page_starts TEXT NOT NULL, passages INTEGER NOT NULL, version TEXT
);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(doc_id), ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL, end INTEGER NOT NULL, clean_start INTEGER NOT NULL, clean_end INTEGER NOT NULL,
    page INTEGER, page_end INTEGER, text TEXT NOT NULL, folded TEXT NOT NULL, language TEXT NOT NULL
);
CREATE INDEX passages_by_doc ON passages(doc_id, ordinal);
"""


def holds_versions(path: Path) -> bool:
    """Whether a store file records its documents' versions (older ones do not: a build cannot start from them)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "version" in {row[1] for row in db.execute("PRAGMA table_info(documents)")}
    finally:
        db.close()


SPARSE_SHARE = 0.25  # of a store file's pages, free ones (deleted documents') that make the writer compact it


class SqliteWriter:
    """A new store file, or a copy of the previous build's (`passages` ids already in it, all below `first_new`)."""

    def __init__(self, path: Path, copy_of: Path | None = None) -> None:
        if copy_of is not None:
            shutil.copyfile(copy_of, path)
        self._db: sqlite3.Connection | None = sqlite3.connect(path)
        if copy_of is None:
            self._db.executescript(_SCHEMA)
        self.first_new = self._db.execute("SELECT coalesce(max(id) + 1, 0) FROM passages").fetchone()[0]
        self.next_id = self.first_new

    def stored(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT doc_id, version FROM documents"))

    def add(self, meta: DocumentMeta, document: ProcessedDocument, version: str) -> list[int]:
        """Store a document and its passages; returns the passages' ids (consecutive, in document order)."""
        self._db.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (meta.doc_id, meta.title, document.language, meta.sha256, meta.url, meta.date, document.format,
             document.original, document.clean_text, json.dumps(document.clean_page_starts), len(document.passages),
             version),
        )
        ids = list(range(self.next_id, self.next_id + len(document.passages)))
        self._db.executemany(
            "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(i, meta.doc_id, ordinal, p.start, p.end, p.clean_start, p.clean_end, p.page, p.page_end, p.text,
              p.folded, document.language)
             for ordinal, (i, p) in enumerate(zip(ids, document.passages))],
        )
        self.next_id += len(document.passages)
        return ids

    def remove(self, doc_ids: list[str]) -> list[int]:
        """Delete documents and their passages; returns the ids their passages had."""
        freed = []
        for chunk in (doc_ids[i : i + 500] for i in range(0, len(doc_ids), 500)):
            marks = ",".join("?" * len(chunk))
            freed += [pid for (pid,) in self._db.execute(f"SELECT id FROM passages WHERE doc_id IN ({marks})", chunk)]
            self._db.execute(f"DELETE FROM passages WHERE doc_id IN ({marks})", chunk)
            self._db.execute(f"DELETE FROM documents WHERE doc_id IN ({marks})", chunk)
        return freed

    def renumber(self, moves: list[tuple[int, int]]) -> None:
        """Give passages their final ids: (new id, current id) pairs, applied in order (stores/layout.py)."""
        self._db.executemany("UPDATE passages SET id = ? WHERE id = ?", moves)

    def finish(self) -> None:
        """Commit and close; a copy that deletions left over a quarter empty is rewritten compactly first."""
        self._db.commit()
        free, pages = (self._db.execute(f"PRAGMA {name}").fetchone()[0] for name in ("freelist_count", "page_count"))
        if free > SPARSE_SHARE * pages:
            self._db.execute("VACUUM")
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.commit()
            self._db.close()
            self._db = None


class SqliteReader:
    """Read-only. One connection, opened when the index is opened and shared by request threads under a
    lock: it keeps the file open, so a retriever still serving requests keeps working even after a later
    publish has deleted its build (an unlinked file stays readable while open). Queries take ~1 ms."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        # every passage's language, in memory (fusion weighs each candidate by it): one byte a passage
        self._language_names, codes = np.unique(
            [row[0] for row in self._query("SELECT language FROM passages ORDER BY id")], return_inverse=True)
        self._language_codes = codes.astype(np.min_scalar_type(len(self._language_names)))
        self.passage_count = len(self._language_codes)

    def _query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def passages(self, ids: list[int]) -> dict[int, StoredPassage]:
        rows = self._rows(
            "SELECT p.id, p.doc_id, d.title, p.start, p.end, p.clean_start, p.clean_end, p.text, p.folded, p.language, "
            "p.page, p.page_end FROM passages p JOIN documents d USING (doc_id) WHERE p.id IN ({marks})",
            ids,
        )
        return {row[0]: StoredPassage(*row) for row in rows}

    def _rows(self, query: str, ids: list[int]) -> list[tuple]:
        if not ids:
            return []
        return self._query(query.format(marks=",".join("?" * len(ids))), [int(i) for i in ids])

    def languages(self, passage_ids: np.ndarray) -> np.ndarray:
        return self._language_names[self._language_codes[passage_ids]]

    def document(self, doc_id: str) -> StoredDocument | None:
        rows = self._query(
            "SELECT doc_id, title, language, sha256, url, date, clean_text, length(original), format, page_starts, "
            f"passages, CASE WHEN format IN ({_EXTRACTED}) THEN original END FROM documents WHERE doc_id = ?",
            (doc_id,),
        )
        if not rows:
            return None
        row = list(rows[0])
        row[9] = json.loads(row[9])
        return StoredDocument(*row)

    def documents(self, folder: str | None = None, offset: int = 0, limit: int = 100) -> list[dict]:
        """A page of documents (doc_id order) with their title, language, format, passages and sha256."""
        where, params = _folder_clause(folder)
        rows = self._query(
            f"SELECT doc_id, title, language, format, passages, sha256 FROM documents {where} "
            "ORDER BY doc_id LIMIT ? OFFSET ?", [*params, limit, offset],
        )
        return [dict(zip(DOCUMENT_LISTING, row)) for row in rows]

    def document_count(self, folder: str | None = None) -> int:
        where, params = _folder_clause(folder)
        return self._query(f"SELECT count(*) FROM documents {where}", params)[0][0]

    @functools.lru_cache(maxsize=64)  # per build, which never changes: a scope costs one scan, once
    def passage_mask(self, folder: str | None, language: str | None) -> np.ndarray | None:
        """Which passages a question scoped to `folder` (a corpus sub-folder) and `language` may cite; None: all."""
        if folder is None and language is None:
            return None
        mask = np.ones(self.passage_count, dtype=bool)
        if language is not None:
            mask &= self._language_codes == _index_of(self._language_names, language)
        if folder is not None:
            in_folder = np.zeros(self.passage_count, dtype=bool)
            where, params = _folder_clause(folder, "doc_id")
            ids = [pid for (pid,) in self._query(f"SELECT id FROM passages {where}", params)]
            in_folder[np.array(ids, dtype=np.int64)] = True
            mask &= in_folder
        return mask

    def original(self, doc_id: str) -> str | None:
        """The decoded file (text, HTML) or extracted text (PDF, Word) the passages' offsets point into."""
        rows = self._query("SELECT original FROM documents WHERE doc_id = ?", (doc_id,))
        return rows[0][0] if rows else None

    def check(self) -> None:
        """Raise sqlite3.DatabaseError if the file is damaged."""
        result = self._query("PRAGMA quick_check")[0][0]
        if result != "ok":
            raise sqlite3.DatabaseError(f"passage store failed its integrity check: {result}")


_EXTRACTED = ", ".join(f"'{format}'" for format in EXTRACTED_FORMATS)


def _folder_clause(folder: str | None, column: str = "doc_id") -> tuple[str, list[str]]:
    """WHERE doc_id is under `folder/` (a range, so the doc_id index serves it), or nothing."""
    if folder is None:
        return "", []
    prefix = folder.strip("/") + "/"
    return f"WHERE {column} >= ? AND {column} < ?", [prefix, prefix[:-1] + chr(ord("/") + 1)]


def _index_of(names: np.ndarray, name: str) -> int:
    """`name`'s position in `names`, or -1 (matches no code) when absent."""
    found = np.flatnonzero(names == name)
    return int(found[0]) if len(found) else -1
