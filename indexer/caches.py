"""The build's two caches, in INDEX/cache/, so a rebuild only does the work of what changed:

  documents.sqlite   a file's processed form (indexer/process.py) by sha256 of its bytes and the pipeline version
  embeddings.sqlite  a passage's vector by sha256 of the encoder's identity, the prompt and the folded text

Only the build holding the index lock writes them, and SQLite keeps them whole if that build is killed.
Garbage collection by generation: a build stamps every entry it uses with its generation (one more than the
last published build's); once it has published, entries used by neither it nor the previous build go, but for the
documents of the corpus the build saw. A build continued from the last one neither reads the documents it keeps nor
looks up their vectors, so it drops no vector: the next build that writes every document (another pipeline or
index format) finds them all, and drops the vectors of documents changed or deleted since.
"""
from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from indexer.process import ProcessedDocument

CACHE_DIR = "cache"
_FAILED = b"!"  # a document entry starting with this is the reason the file could not be read (JSON+zlib never is)
_IN_BATCH = 500  # keys per `IN (…)` query, well under SQLite's variable limit
_IS_FAILURE = f"substr(processed, 1, {len(_FAILED)}) = X'{_FAILED.hex()}'"


class _GenerationalCache:
    def __init__(self, path: Path, table: str, value_column: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        # set before the first table exists: a 1.5 KB vector fits a 16 KB page's rows (on 4 KB pages each one
        # overflowed into a page of its own, 4.6 KB an entry), and freed pages go back to the file system
        self._db.execute("PRAGMA page_size=16384")
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (key BLOB PRIMARY KEY, {value_column} BLOB NOT NULL, "
            "used INTEGER NOT NULL) WITHOUT ROWID"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        self._table, self._value = table, value_column
        row = self._db.execute("SELECT value FROM meta WHERE name = 'published'").fetchone()
        self.generation = (row[0] if row else 0) + 1

    def _get_many(self, keys: list[bytes], value: str | None = None, stamp: bool = True,
                  source: str | None = None) -> dict[bytes, bytes]:
        """The entries of `keys` the cache holds: key → `value` (an SQL expression; default: the whole value) from
        `source` (default: the table). `stamp`: mark them used by this build (once per build is enough)."""
        found: dict[bytes, bytes] = {}
        for first in range(0, len(keys), _IN_BATCH):
            batch = keys[first : first + _IN_BATCH]
            marks = ",".join("?" * len(batch))
            found.update(self._db.execute(
                f"SELECT key, {value or self._value} FROM {source or self._table} WHERE key IN ({marks})", batch
            ).fetchall())
            if stamp:
                self._db.execute(f"UPDATE {self._table} SET used = ? WHERE key IN ({marks})", [self.generation, *batch])
        return found

    def _put_many(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        self._db.executemany(
            f"INSERT OR REPLACE INTO {self._table} VALUES (?, ?, ?)",
            ((key, value, self.generation) for key, value in items),
        )
        self._db.commit()

    def published(self, keep: Iterable[bytes] = (), collect: bool = True) -> int:
        """The build of this generation is live: drop what neither it nor the one before used, but `keep`
        (nothing unless `collect`). Returns the count."""
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS keep (key BLOB PRIMARY KEY)")
        self._db.execute("DELETE FROM temp.keep")
        self._db.executemany("INSERT OR IGNORE INTO temp.keep VALUES (?)", ((key,) for key in keep))
        unused = f"DELETE FROM {self._table} WHERE used < ? AND key NOT IN (SELECT key FROM temp.keep)"
        dropped = self._db.execute(unused, (self.generation - 1,)).rowcount if collect else 0
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('published', ?)", (self.generation,))
        self._db.commit()
        if dropped:
            self._db.execute("PRAGMA incremental_vacuum")
        return dropped

    def close(self) -> None:
        self._db.commit()
        self._db.close()


class DocumentCache(_GenerationalCache):
    # Every file's key and whether it failed, in an index of their own: the read stage asks both of every file
    # without touching the documents (tens of KB each, mostly in overflow pages). 43k files at 1M passages:
    # one-by-one lookups 1.55 -> 0.18 s, the failure check 0.98 -> 0.66 s, more where the file is not cached in RAM.
    _STATE = "documents INDEXED BY documents_state"

    def __init__(self, root: Path) -> None:
        super().__init__(root / CACHE_DIR / "documents.sqlite", "documents", "processed")
        self._db.execute(f"CREATE INDEX IF NOT EXISTS documents_state ON documents(key, {_IS_FAILURE})")

    @staticmethod
    def key(sha256: str, pipeline: str) -> bytes:
        return bytes.fromhex(sha256) + pipeline.encode()

    def contains(self, key: bytes) -> bool:
        return self._db.execute(f"SELECT 1 FROM {self._STATE} WHERE key = ?", (key,)).fetchone() is not None

    def get_many(self, keys: list[bytes]) -> list[ProcessedDocument]:
        """Processed documents the cache holds (`failures` said so), in the order of `keys`."""
        found = self._get_many(keys, stamp=False)
        return [ProcessedDocument.from_bytes(found[key]) for key in keys]

    def failures(self, keys: list[bytes]) -> dict[bytes, str | None]:
        """Per key: why the file could not be read ("" if the cache has no entry), None if it holds a document.
        Reads a failure's reason only, not a document, and marks nothing used (`published` keeps the corpus's)."""
        failed = self._get_many(keys, _IS_FAILURE, stamp=False, source=self._STATE)
        reasons = self._get_many([key for key, is_failure in failed.items() if is_failure], stamp=False)
        return {key: None if failed.get(key) == 0 else reasons.get(key, _FAILED)[len(_FAILED):].decode()
                for key in keys}

    def put(self, key: bytes, document: bytes) -> None:
        """`document` as ProcessedDocument.to_bytes() made it (in a worker process)."""
        self._put_many([(key, document)])

    def put_failure(self, key: bytes, reason: str) -> None:
        """Remember that these bytes can never be read, so no later build tries again."""
        self._put_many([(key, _FAILED + reason.encode())])


class EmbeddingCache(_GenerationalCache):
    def __init__(self, root: Path, encoder_identity: str, prompt: str = "passage") -> None:
        super().__init__(root / CACHE_DIR / "embeddings.sqlite", "embeddings", "vector")
        self._prefix = f"{encoder_identity}\0{prompt}\0".encode()

    def key(self, folded: str) -> bytes:
        return hashlib.sha256(self._prefix + folded.encode()).digest()

    def get_many(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        return {key: np.frombuffer(value, dtype=np.float32) for key, value in self._get_many(keys).items()}

    def holds(self, keys: list[bytes]) -> set[bytes]:
        """The keys with a vector, read without the vectors and not marked used (`get_many` will be)."""
        return set(self._get_many(keys, "1", stamp=False))

    def put_many(self, keys: list[bytes], vectors: np.ndarray) -> None:
        self._put_many((key, np.ascontiguousarray(vector, dtype=np.float32).tobytes()) for key, vector in zip(keys, vectors))
