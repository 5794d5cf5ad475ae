"""The embedded store: one immutable snapshot per build in an index folder (stores/index_dir.py), made of
SQLite (stores/sqlite.py), BM25 (stores/bm25.py) and FAISS (stores/faiss_index.py). Passage id = SQLite row
id = vector row = BM25 column, so a candidate's id reads everything about it.

A snapshot starts empty, so its writer holds nothing and deletes nothing: every build writes every document
(from the indexer's caches, which is what keeps rebuilds cheap) and `publish` switches INDEX/current.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from indexer.process import ProcessedDocument
from stores import index_dir
from stores.bm25 import VocabularyBuilder, save_keyword_index
from stores.contract import (Candidates, DocumentMeta, KeywordSide, Scope, StoredDocument, StoredPassage,
                             mean_vector)
from stores.faiss_index import build_vector_index, index_spec, save_vector_index, search, stored_vectors
from stores.sqlite import SqliteWriter

_RAW_VECTORS = "vectors.f32"  # written while documents stream in, turned into the FAISS index at publish


class EmbeddedStore:
    """A published build, opened (PassageStore)."""

    def __init__(self, opened: index_dir.OpenIndex) -> None:
        self.path, self.manifest = opened.path, opened.manifest
        self._sqlite, self._vectors = opened.store, opened.vectors
        self._keywords, self._pivot = opened.keywords, opened.pivot

    @property
    def passage_count(self) -> int:
        return self._sqlite.passage_count

    def dense(self, vector: np.ndarray, k: int, scope: Scope) -> Candidates:
        scores, ids = search(self._vectors, vector[None, :], k, self._mask(scope))
        found = ids[0] >= 0  # FAISS pads with -1 when fewer than k vectors are allowed
        return self._candidates(ids[0][found], scores[0][found])

    def keyword(self, tokens: list[str], k: int, scope: Scope, side: KeywordSide = "own") -> Candidates:
        index = self._keywords if side == "own" else self._pivot
        return self._candidates(*index.top(tokens, k, self._mask(scope)))

    def known(self, tokens: list[str]) -> np.ndarray:
        return self._keywords.known(tokens)

    def _candidates(self, ids: np.ndarray, scores: np.ndarray) -> Candidates:
        ids = ids.astype(np.int64)
        return Candidates(ids, scores.astype(np.float64), self._sqlite.languages(ids))

    def _mask(self, scope: Scope) -> np.ndarray | None:
        return None if scope.everything else self._sqlite.passage_mask(scope.folder, scope.language)

    def passages(self, ids: list[int]) -> dict[int, StoredPassage]:
        return self._sqlite.passages(ids)

    def vectors(self, ids: list[int]) -> np.ndarray:
        return stored_vectors(self._vectors, ids)

    def document(self, doc_id: str) -> StoredDocument | None:
        return self._sqlite.document(doc_id)

    def documents(self, folder: str | None = None, offset: int = 0, limit: int = 100) -> list[dict]:
        return self._sqlite.documents(folder, offset, limit)

    def document_count(self, folder: str | None = None) -> int:
        return self._sqlite.document_count(folder)

    def original(self, doc_id: str) -> str | None:
        return self._sqlite.original(doc_id)

    def ping(self) -> None:
        """Files already open: nothing can go away."""


class EmbeddedWriter:
    """Writes a new snapshot into builds/.tmp-<id>-<pid>/ (StoreWriter)."""

    def __init__(self, root: Path, build_id: str) -> None:
        self.root, self.build_id = root, build_id
        index_dir.remove_stale_temporaries(root)
        self.tmp = index_dir.new_build_dir(root, build_id)
        self._sqlite = SqliteWriter(self.tmp / index_dir.STORE)
        self._vocabulary, self._pivot = VocabularyBuilder(), VocabularyBuilder()
        self._vectors = (self.tmp / _RAW_VECTORS).open("wb")
        self._dim = 0

    def stored(self) -> dict[str, str]:
        return {}

    def write(self, meta: DocumentMeta, document: ProcessedDocument, vectors: np.ndarray, version: str) -> None:
        self._sqlite.add(meta, document)
        for passage in document.passages:
            self._vocabulary.add(passage.tokens)
            self._pivot.add(passage.pivot)
        self._vectors.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        self._dim = vectors.shape[1]

    def delete(self, doc_ids: Iterable[str]) -> None:
        """Nothing to delete: a snapshot holds only what this build wrote."""

    def seal(self) -> dict:
        passages = self._sqlite.passage_count
        self._sqlite.close()
        self._vectors.close()
        save_keyword_index(self._vocabulary.build(), self.tmp / index_dir.KEYWORDS)
        save_keyword_index(self._pivot.build(), self.tmp / index_dir.PIVOT)
        spec, mean = self._vector_index()
        return {"passages": passages, "dim": self._dim, "vector_index": spec, "mean_vector": mean}

    def publish(self, manifest: dict) -> str:
        index_dir.write_manifest(self.tmp, manifest)
        return str(index_dir.publish(self.root, self.tmp, self.build_id))

    def _vector_index(self) -> tuple[str, list[float]]:
        """The FAISS index's spec and the mean vector, both from the raw vectors (memory-mapped)."""
        raw = self.tmp / _RAW_VECTORS
        vectors = np.memmap(raw, dtype=np.float32, mode="r").reshape(-1, self._dim)
        spec = index_spec(len(vectors))
        save_vector_index(build_vector_index(vectors, spec), self.tmp / index_dir.VECTORS)
        mean = mean_vector((vectors[first : first + 65536] for first in range(0, len(vectors), 65536)), self._dim)
        del vectors
        raw.unlink()
        return spec, mean

    def close(self) -> None:
        self._vectors.close()
        self._sqlite.close()
        shutil.rmtree(self.tmp, ignore_errors=True)  # unpublished: nothing left behind (published: already moved)


class EmbeddedLocation:
    """An index folder (StoreLocation)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __str__(self) -> str:
        return str(self.root)

    def published(self) -> str | None:
        build = index_dir.current_build(self.root)
        return build.name if build is not None else None

    def manifest(self) -> dict | None:
        build = index_dir.current_build(self.root)
        return index_dir.read_manifest(build) if build is not None else None

    def open(self, model_id: str, dim: int) -> EmbeddedStore:
        return EmbeddedStore(index_dir.open_index(self.root, model_id, dim))

    def writer(self, build_id: str, model_id: str) -> EmbeddedWriter:
        return EmbeddedWriter(self.root, build_id)
