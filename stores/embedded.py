"""The embedded store: one immutable snapshot per build in an index folder (stores/index_dir.py), made of
SQLite (stores/sqlite.py), BM25 (stores/bm25.py) and FAISS (stores/faiss_index.py). Passage id = SQLite row
id = vector row = BM25 column, so a candidate's id reads everything about it.

A build starts from a copy of the published snapshot: the SQLite file copied, the BM25 indexes rebuilt from the
token ids saved beside them, the FAISS index updated in place (inverted lists keep their training). Only the
documents that changed are written or deleted; stores/layout.py keeps the ids dense. A build with nothing to start
from (none yet, another model, a snapshot of older code) writes every document, from the indexer's caches.
`publish` switches INDEX/current.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from indexer.process import ProcessedDocument
from stores import index_dir
from stores.bm25 import LENGTHS, TOKENS, VOCABULARY, VocabularyBuilder
from stores.contract import (Candidates, DocumentMeta, IndexUnusable, KeywordSide, Scope, StoredDocument,
                             StoredPassage, rounded_mean, vector_sum)
from stores.faiss_index import (build_vector_index, index_spec, read_vector_index, save_vector_index, search,
                                stored_vectors, updated_vector_index)
from stores.layout import dense_layout, moves
from stores.sqlite import SqliteWriter, holds_versions

_RAW_VECTORS = "vectors.f32"  # written while documents stream in, turned into the FAISS index at publish
_VECTOR_SUM = "vector_sum.npy"  # float64 sum of the vectors held: the next build's mean stays exact


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
    """Writes a new snapshot into builds/.tmp-<id>-<pid>/ (StoreWriter): from a copy of the published build when it
    can be continued (`continuable`), so that only what changed is written; else from nothing."""

    def __init__(self, root: Path, build_id: str, model_id: str) -> None:
        self.root, self.build_id = root, build_id
        index_dir.remove_stale_temporaries(root)
        self.tmp = index_dir.new_build_dir(root, build_id)
        self.base = continuable(root, model_id)
        part = (lambda name: self.base / name) if self.base is not None else (lambda name: None)  # of the base
        self._sqlite = SqliteWriter(self.tmp / index_dir.STORE, copy_of=part(index_dir.STORE))
        self._vocabulary = VocabularyBuilder(part(index_dir.KEYWORDS))
        self._pivot = VocabularyBuilder(part(index_dir.PIVOT))
        self._vectors = (self.tmp / _RAW_VECTORS).open("wb")
        self._freed: list[int] = []  # ids of the copied passages deleted or replaced
        self._added, self._dim = 0, 0

    def stored(self) -> dict[str, str]:
        return self._sqlite.stored()

    def write(self, meta: DocumentMeta, document: ProcessedDocument, vectors: np.ndarray, version: str) -> None:
        if self.base is not None:
            self._freed += self._sqlite.remove([meta.doc_id])
        self._sqlite.add(meta, document, version)
        for passage in document.passages:
            self._vocabulary.add(passage.tokens)
            self._pivot.add(passage.pivot)
        self._vectors.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        self._added += len(document.passages)
        self._dim = vectors.shape[1]

    def delete(self, doc_ids: Iterable[str]) -> None:
        if self.base is not None:
            self._freed += self._sqlite.remove(list(doc_ids))

    def seal(self) -> dict:
        live = np.ones(self._sqlite.first_new, dtype=bool)
        live[self._freed] = False
        layout = dense_layout(live, self._added)
        self._sqlite.renumber(moves(layout))
        self._sqlite.finish()
        self._vectors.close()
        self._vocabulary.save(self.tmp / index_dir.KEYWORDS, layout)
        self._pivot.save(self.tmp / index_dir.PIVOT, layout)
        spec, total = self._vector_index(live, layout)
        np.save(self.tmp / _VECTOR_SUM, total)
        return {"passages": len(layout), "dim": self._dim, "vector_index": spec,
                "mean_vector": rounded_mean(total, len(layout))}

    def publish(self, manifest: dict) -> str:
        index_dir.write_manifest(self.tmp, manifest)
        return str(index_dir.publish(self.root, self.tmp, self.build_id))

    def _vector_index(self, live: np.ndarray, layout: np.ndarray) -> tuple[str, np.ndarray]:
        """The FAISS index's spec and the float64 sum of its vectors; the new vectors are memory-mapped."""
        previous = read_vector_index(self.base / index_dir.VECTORS) if self.base is not None else None
        self._dim = self._dim or previous.d
        raw = self.tmp / _RAW_VECTORS
        added = (np.memmap(raw, dtype=np.float32, mode="r").reshape(-1, self._dim) if self._added
                 else np.empty((0, self._dim), dtype=np.float32))
        total, _ = vector_sum((added[first : first + 65536] for first in range(0, len(added), 65536)), self._dim)
        spec = index_spec(len(layout))
        if previous is None:
            index = build_vector_index(added, spec)
        else:
            index, removed = updated_vector_index(previous, live, layout, added, spec)
            total += np.load(self.base / _VECTOR_SUM) - removed
        save_vector_index(index, self.tmp / index_dir.VECTORS)
        del added
        raw.unlink()
        return spec, total

    def close(self) -> None:
        self._vectors.close()
        self._sqlite.close()
        shutil.rmtree(self.tmp, ignore_errors=True)  # unpublished: nothing left behind (published: already moved)


def continuable(root: Path, model_id: str) -> Path | None:
    """The published build, if a build can start from it: made with `model_id`, with its documents' versions,
    its passages' token ids and its vectors' sum (older builds have none of them, and are rewritten whole)."""
    build = index_dir.current_build(root)
    try:
        manifest = index_dir.read_manifest(build) if build is not None else None
    except IndexUnusable:
        return None
    if manifest is None or manifest["model"]["id"] != model_id:
        return None
    parts = [index_dir.STORE, index_dir.VECTORS, _VECTOR_SUM, *(f"{side}/{name}" for side in
             (index_dir.KEYWORDS, index_dir.PIVOT) for name in (VOCABULARY, TOKENS, LENGTHS))]
    whole = all((build / part).is_file() for part in parts) and holds_versions(build / index_dir.STORE)
    return build if whole else None


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
        return EmbeddedWriter(self.root, build_id, model_id)
