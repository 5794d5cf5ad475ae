"""Writing builds into Milvus, in place, a document at a time.

A document's rows are written passages first, then its stale passages deleted, then its document row, whose
part 0 records the version: a build that dies midway leaves the old version recorded (or none), so the next
build sees the document as changed and writes it again. Rows are buffered and sent in batches.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from indexer.process import ProcessedDocument
from stores.contract import EXTRACTED_FORMATS, DocumentMeta
from stores.milvus_connection import Connection
from stores.milvus_schema import (MANIFEST_PROPERTY, MAX_ID_BYTES, MODEL_PROPERTY, Names, clipped, dense_index_for,
                                  document_key, documents_indexes, documents_schema, fits, folders_of, keyword_text, literal,
                                  model_property, passage_id, passages_indexes, passages_schema, utf8_chunks)
from stores.milvus_store import MAX_RESULTS, mean_of_vectors, scan

log = logging.getLogger(__name__)
BATCH_ROWS = 512  # passages per upsert: measured, stores/milvus.py
BATCH_BYTES = 8 << 20  # document parts per upsert, by size (a part holds up to 2 × 64 KiB of text)
DELETE_IDS = 1_000  # doc_ids per expression
STRONG = "Strong"  # the writer reads its own writes (a cluster's default, Bounded, may lag them)


@dataclass
class Pending:
    """Rows not yet sent, in the order they must reach Milvus."""
    passages: list[dict] = field(default_factory=list)  # of documents that may have rows: upserted
    new_passages: list[dict] = field(default_factory=list)  # of documents with none yet: inserted (cheaper)
    stale: list[tuple[str, int, int]] = field(default_factory=list)  # (doc_id, passages, parts) now
    documents: list[dict] = field(default_factory=list)
    doc_ids: set[str] = field(default_factory=set)


class MilvusWriter:
    """A StoreWriter into a location's collections (which it drops and remakes when the model changes)."""

    def __init__(self, connection: Connection, names: Names, build_id: str, model_id: str,
                 dense_index: str | None = None, batch_rows: int = BATCH_ROWS) -> None:
        self._connection = connection
        self._names = names
        self.build_id = build_id
        self._model_id = model_id
        self._dense_index = dense_index  # None: the server's (milvus_schema.dense_index_for)
        self._batch_rows = batch_rows
        self._pending = Pending()
        self._known: set[str] | None = None  # doc_ids that may have rows (from stored()); None: not asked
        self._reported = False  # stored() named documents (the build will not rewrite them)
        self._wrote = False
        self._dim = self._prepare()

    def _call(self, what: str, method: str, *args, **kwargs):
        return self._connection.call(what, lambda client, seconds: getattr(client, method)(
            *args, timeout=seconds, **kwargs))

    def _prepare(self) -> int | None:
        """The vector dimension of the collections to write into; None when they must be made (first write)."""
        names = self._names
        exists = [self._call("look for the collections", "has_collection", name)
                  for name in (names.passages, names.documents)]
        if not any(exists):
            self._known = set()  # nothing stored: no document needs its stale rows deleted
            return None
        description = self._call("describe the passages collection", "describe_collection", names.passages) \
            if exists[0] else {}
        held, made = description.get("properties", {}).get(MODEL_PROPERTY, "{}"), model_property(self._model_id)
        if not all(exists) or held != made:
            log.info("Milvus %s holds rows made with %s, this build makes %s: starting over", names.passages, held, made)
            self._drop()
            return None
        return next(f["params"]["dim"] for f in description["fields"] if f["name"] == "vector")

    def _drop(self) -> None:
        for name in (self._names.passages, self._names.documents):
            self._call("drop a collection", "drop_collection", name)
        self._known = set()

    def _create(self, dim: int) -> None:
        names = self._names
        dense = self._dense_index or dense_index_for(self._call("ask the server version", "get_server_version"))
        self._make(names.passages, passages_schema(dim), lambda client: passages_indexes(client, dense))
        self._call("label the passages collection", "alter_collection_properties", names.passages,
                   properties={MODEL_PROPERTY: model_property(self._model_id)})
        self._make(names.documents, documents_schema(dim), documents_indexes)
        self._dim = dim

    def _make(self, name: str, schema, indexes) -> None:
        """Create, index and load a collection. sync=False: pymilvus would poll each index of the (empty)
        collection every 0.5 s until built, 2.5 s for the passages' five."""
        self._call("create a collection", "create_collection", name, schema=schema)
        self._connection.call("index a collection", lambda client, seconds: client.create_index(
            name, indexes(client), timeout=seconds, sync=False))
        self._call("load a collection", "load_collection", name)

    def stored(self) -> dict[str, str]:
        """doc_id → version of each document recorded; "" for passages whose document row never got written."""
        self._flush()
        if self._dim is None:
            self._known = set()
            return {}
        versions = {row["doc_id"]: row["meta"].get("version", "") for row in scan(
            self._connection, "list stored documents", self._names.documents, "part == 0", ["doc_id", "meta"], STRONG)}
        for row in scan(self._connection, "list stored passages", self._names.passages, "ordinal == 0", ["doc_id"],
                        STRONG):
            versions.setdefault(row["doc_id"], "")  # a build died between them: rewrite or delete it
        self._known, self._reported = set(versions), bool(versions)
        return versions

    def write(self, meta: DocumentMeta, document: ProcessedDocument, vectors: np.ndarray, version: str) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(document.passages):
            raise ValueError(f"{meta.doc_id}: {len(document.passages)} passages but vectors of shape {vectors.shape}")
        self._ensure_collections(vectors.shape[1])
        self._wrote = True
        if meta.doc_id in self._pending.doc_ids:
            self._flush()  # written twice in one batch: the first one's rows must not land after the second's
        documents = document_rows(meta, document, vectors, version)
        pending = self._pending
        if self._known is not None and meta.doc_id not in self._known:
            pending.new_passages += passage_rows(meta, document, vectors)
            self._known.add(meta.doc_id)
        else:
            pending.passages += passage_rows(meta, document, vectors)
        pending.stale.append((meta.doc_id, len(document.passages), len(documents)))
        pending.documents += documents
        pending.doc_ids.add(meta.doc_id)
        if len(pending.passages) + len(pending.new_passages) >= self._batch_rows:
            self._flush()

    def _ensure_collections(self, dim: int) -> None:
        """Collections for `dim`-d vectors: made at the first write, remade if they hold another dimension."""
        if self._dim == dim:
            return
        if self._wrote:
            raise ValueError(f"{dim}-d vectors after {self._dim}-d ones in one build")
        if self._dim is not None:
            log.info("Milvus %s holds %d-d vectors, this build writes %d-d: starting over", self._names.passages,
                     self._dim, dim)
            self._drop()
            if self._reported:  # the build skipped documents stored() called unchanged: they are gone now
                raise ValueError(f"Milvus {self._names.passages} held {self._dim}-d vectors but model "
                                 f"{self._model_id} gives {dim}-d; the collections were emptied: run the build again")
        self._create(dim)

    def _flush(self) -> None:
        pending, self._pending = self._pending, Pending()
        names = self._names
        fresh = {row["doc_id"] for row in pending.new_passages}
        rewritten = {doc_id: (passages, parts) for doc_id, passages, parts in pending.stale if doc_id not in fresh}
        stale_passages = self._beyond(names.passages, "ordinal", "id", {d: n[0] for d, n in rewritten.items()})
        stale_parts = self._beyond(names.documents, "part", "key", {d: n[1] for d, n in rewritten.items()})
        for method, rows in (("insert", pending.new_passages), ("upsert", pending.passages)):
            for first in range(0, len(rows), self._batch_rows):
                self._call("write passages", method, names.passages, rows[first : first + self._batch_rows])
        self._delete_ids("delete stale passages", names.passages, stale_passages)
        for batch in _by_size(pending.documents, BATCH_BYTES):
            self._call("write documents", "upsert", names.documents, batch)
        self._delete_ids("delete stale document parts", names.documents, stale_parts)

    def _beyond(self, collection: str, position: str, key: str, lengths: dict[str, int]) -> list:
        """Keys of the rows of these documents at `position` ≥ their new length (left by a longer version, or
        by a build that died while writing one). One query per batch, not a delete by filter per document:
        every request costs Milvus Lite a pass over the collection (~50-150 ms at 4-21k passages)."""
        doc_ids, stale = sorted(lengths), []
        for first in range(0, len(doc_ids), DELETE_IDS):
            stale += self._rows_beyond(collection, position, key, lengths, doc_ids[first : first + DELETE_IDS])
        return stale

    def _rows_beyond(self, collection: str, position: str, key: str, lengths: dict[str, int],
                     doc_ids: list[str]) -> list:
        shortest = min(lengths[d] for d in doc_ids)
        expression = f"doc_id in [{', '.join(literal(d) for d in doc_ids)}] and {position} >= {shortest}"
        fields = [key, "doc_id", position]
        rows = self._call("find stale rows", "query", collection, filter=expression, output_fields=fields,
                          limit=MAX_RESULTS, consistency_level=STRONG)
        if len(rows) >= MAX_RESULTS:  # more than one query returns: page through them
            rows = list(scan(self._connection, "find stale rows", collection, expression, fields, STRONG))
        return [row[key] for row in rows if row[position] >= lengths[row["doc_id"]]]

    def _delete_ids(self, what: str, collection: str, keys: list) -> None:
        for first in range(0, len(keys), self._batch_rows):
            self._call(what, "delete", collection, ids=keys[first : first + self._batch_rows])

    def delete(self, doc_ids: Iterable[str]) -> None:
        self._flush()
        doc_ids = sorted(set(doc_ids))
        if self._dim is None or not doc_ids:
            return
        for first in range(0, len(doc_ids), DELETE_IDS):
            listed = ", ".join(literal(d) for d in doc_ids[first : first + DELETE_IDS])
            for name in (self._names.passages, self._names.documents):  # passages first: stored() sees leftovers
                self._call("delete documents", "delete", name, filter=f"doc_id in [{listed}]")

    def seal(self) -> dict:
        """Flush everything and count what Milvus holds now (the manifest's counts are the store's)."""
        self._flush()
        if self._dim is None:
            raise ValueError(f"nothing was written into the new collections {self._names.passages}")
        names = self._names
        for name in (names.passages, names.documents):
            self._call("flush writes", "flush", name)
        index = self._call("describe the vector index", "describe_index", names.passages, "vector")
        passages = self._count(names.passages, "")
        mean = mean_of_vectors(self._connection, names.passages, passages, self._dim, STRONG)
        return {"passages": passages, "dim": self._dim,
                "vector_index": f"milvus {index.get('index_type', '')}".strip(), "mean_vector": mean}

    def publish(self, manifest: dict) -> str:
        """Set the manifest on the passages collection: readers polling `published()` switch to it. The
        per-file hashes stay out of it (a collection property is small; the build's result keeps them)."""
        corpus = {key: value for key, value in manifest.get("corpus", {}).items() if key != "files"}
        manifest = {**manifest, "corpus": corpus}
        self._call("publish the manifest", "alter_collection_properties", self._names.passages,
                   properties={MANIFEST_PROPERTY: json.dumps(manifest, ensure_ascii=False)})
        return f"{self._connection.uri}/{self._names.passages} build {manifest.get('build_id', self.build_id)}"

    def _count(self, collection: str, filter: str) -> int:
        rows = self._call("count rows", "query", collection, filter=filter, output_fields=["count(*)"],
                          consistency_level=STRONG)
        return int(rows[0]["count(*)"])

    def close(self) -> None:
        """Unsent rows are dropped (their documents' versions were never recorded: the next build redoes them)."""
        self._pending = Pending()
        self._connection.close()


def passage_rows(meta: DocumentMeta, document: ProcessedDocument, vectors: np.ndarray) -> list[dict]:
    folders, title = folders_of(meta.doc_id), clipped(meta.title, MAX_ID_BYTES)
    rows = []
    for ordinal, (passage, vector) in enumerate(zip(document.passages, vectors)):
        overflow = not (fits(passage.text) and fits(passage.folded))
        rows.append({
            "id": passage_id(meta.doc_id, ordinal), "doc_id": meta.doc_id, "folders": folders, "ordinal": ordinal,
            "language": document.language, "title": title, "start": passage.start, "end": passage.end,
            "clean_start": passage.clean_start, "clean_end": passage.clean_end, "page": passage.page,
            "page_end": passage.page_end, "text": "" if overflow else passage.text,
            "folded": "" if overflow else passage.folded, "overflow": overflow,
            "keywords": keyword_text(passage.tokens), "pivot": keyword_text(passage.pivot), "vector": vector.tolist(),
        })
    return rows


def document_rows(meta: DocumentMeta, document: ProcessedDocument, vectors: np.ndarray, version: str) -> list[dict]:
    """The document cut into parts of at most one VARCHAR of each text; part 0 (carrying `meta`) comes last."""
    extracted = document.format in EXTRACTED_FORMATS
    clean, original = utf8_chunks(document.clean_text), utf8_chunks(document.original) if extracted else []
    parts = max(len(clean), len(original), 1)
    info = {
        "title": meta.title, "language": document.language, "sha256": meta.sha256, "url": meta.url,
        "date": meta.date, "format": document.format, "page_starts": document.clean_page_starts,
        "passages": len(document.passages), "original_length": len(document.original), "version": version,
        "parts": parts, "extracted": extracted,
    }
    folders, mean = folders_of(meta.doc_id), mean_vector(vectors).tolist()
    rows = [{
        "key": document_key(meta.doc_id, part), "doc_id": meta.doc_id, "part": part, "folders": folders,
        "meta": info if part == 0 else {}, "clean": clean[part] if part < len(clean) else "",
        "extracted": original[part] if part < len(original) else "", "vector": mean,
    } for part in range(parts)]
    return rows[1:] + rows[:1]


def mean_vector(vectors: np.ndarray) -> np.ndarray:
    """The normalized mean of a document's passage vectors (a unit vector even for none or opposite ones)."""
    mean = vectors.mean(axis=0) if len(vectors) else np.zeros(vectors.shape[1], dtype=np.float32)
    norm = float(np.linalg.norm(mean))
    if norm > 0:
        return (mean / norm).astype(np.float32)
    unit = np.zeros(vectors.shape[1], dtype=np.float32)
    unit[0] = 1.0
    return unit


def _by_size(rows: list[dict], limit: int) -> Iterable[list[dict]]:
    batch, size = [], 0
    for row in rows:
        row_size = len(row["clean"]) * 3 + len(row["extracted"]) * 3 + 4 * len(row["vector"]) + 1024
        if batch and size + row_size > limit:
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += row_size
    if batch:
        yield batch
