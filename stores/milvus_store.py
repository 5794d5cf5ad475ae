"""Reading a published build from Milvus: searches, passages, documents and the document listing.

Milvus is updated in place, so a store is "the collections as they are now, under the manifest published
when it was opened"; the service reopens it when `published()` changes.
"""
from __future__ import annotations

import bisect
import itertools
import math
import threading
from collections.abc import Iterator

import numpy as np
from pymilvus import MilvusClient

from stores.contract import (DOCUMENT_LISTING, Candidates, KeywordSide, Scope, StoredDocument, StoredPassage,
                             StoreUnavailable, mean_vector)
from stores.milvus_connection import Connection
from stores.milvus_schema import (DOCUMENT_FIELDS, KEYWORD_FIELDS, PASSAGE_FIELDS, SEARCH_FIELDS, SPARSE_FIELDS, Names,
                                  dense_search_params, folder_name, keyword_text, literal, scope_filter)
from text.normalize import fold_script

MAX_RESULTS = 16_384  # Milvus' cap on one query's rows and on a search's limit
ID_BATCH = 1_000
KNOWN_WORDS = 100_000  # words whose presence a store remembers (its build's; a new build opens a new store)


class MilvusStore:
    """A PassageStore over a location's collections, for the build whose manifest it was opened with."""

    def __init__(self, connection: Connection, names: Names, manifest: dict, passage_count: int,
                 dense_index: str) -> None:
        self._connection = connection
        self._names = names
        self._manifest = manifest
        self._passage_count = passage_count
        self._dense_index = dense_index  # the vector field's index type: how to search it
        self._listing: list[dict] | None = None
        self._listing_ids: list[str] = []
        self._listing_lock = threading.Lock()
        self._known: dict[str, bool] = {}  # replaced when full, never shrunk: readers keep a consistent one

    @property
    def manifest(self) -> dict:
        return self._manifest

    @property
    def passage_count(self) -> int:
        return self._passage_count

    def dense(self, vector: np.ndarray, k: int, scope: Scope) -> Candidates:
        query = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        params = dense_search_params(self._dense_index, k)
        return self._search("search passages by vector", query, "vector", k, scope, params)

    def keyword(self, tokens: list[str], k: int, scope: Scope, side: KeywordSide = "own") -> Candidates:
        words = keyword_text(tokens)
        if not words:
            return Candidates.empty()
        return self._search("search passages by keyword", words, KEYWORD_FIELDS[side][1], k, scope,
                            {"metric_type": "BM25"})

    def known(self, tokens: list[str]) -> np.ndarray:
        """Remembered, or looked up: a lookup took 7–9 ms a question on milvus-lite, and questions share most words."""
        remembered = self._known
        found = {token: remembered[token] for token in tokens if token in remembered}
        missing = [token for token in dict.fromkeys(tokens) if token not in found]
        if missing:
            looked_up = dict(zip(missing, self._look_up(missing).tolist()))
            if len(remembered) + len(looked_up) > KNOWN_WORDS:
                self._known = looked_up
            else:
                remembered.update(looked_up)
            found.update(looked_up)
        return np.array([found[token] for token in tokens], dtype=bool)

    def _look_up(self, tokens: list[str]) -> np.ndarray:
        """One search of one hit per token: a token no passage contains finds none."""
        hits = self._connection.call("look keywords up", lambda client, seconds: client.search(
            self._names.passages, data=[keyword_text([token]) for token in tokens], anns_field="sparse", limit=1,
            search_params={"metric_type": "BM25"}, output_fields=[], timeout=seconds,
        ), self._names.passages)
        return np.array([len(found) > 0 for found in hits], dtype=bool)

    def _search(self, what: str, query, field: str, k: int, scope: Scope, params: dict) -> Candidates:
        if k <= 0:
            return Candidates.empty()
        hits = self._connection.call(what, lambda client, seconds: client.search(
            self._names.passages, data=[query], anns_field=field, limit=min(k, MAX_RESULTS),
            filter=scope_filter(scope), search_params=params, output_fields=list(SEARCH_FIELDS), timeout=seconds,
        ), self._names.passages)[0]
        if not hits:
            return Candidates.empty()
        # BM25 distances are negative in Milvus Lite and positive in Milvus, best first in both: abs() is the score
        return Candidates(np.array([int(hit.id) for hit in hits], np.int64),
                          np.array([abs(float(hit.distance)) if field in SPARSE_FIELDS else float(hit.distance) for hit in hits]),
                          np.array([hit["entity"]["language"] for hit in hits]))

    def passages(self, ids: list[int]) -> dict[int, StoredPassage]:
        rows = []
        unique = list(dict.fromkeys(int(i) for i in ids))
        for first in range(0, len(unique), ID_BATCH):
            batch = unique[first : first + ID_BATCH]
            rows += self._connection.call("read passages", lambda client, seconds: client.get(
                self._names.passages, ids=batch, output_fields=list(PASSAGE_FIELDS), timeout=seconds),
                self._names.passages)
        return {int(row["id"]): self._passage(row) for row in rows}

    def vectors(self, ids: list[int]) -> np.ndarray:
        rows = self._connection.call("read passage vectors", lambda client, seconds: client.get(
            self._names.passages, ids=[int(i) for i in ids], output_fields=["vector"], timeout=seconds),
            self._names.passages)
        found = {int(row["id"]): row["vector"] for row in rows}
        return np.array([found[int(i)] for i in ids], dtype=np.float32).reshape(len(ids), -1)

    def _passage(self, row: dict) -> StoredPassage:
        fields = {name: row.get(name) for name in PASSAGE_FIELDS if name != "overflow"}
        fields["id"] = int(fields["id"])
        if row.get("overflow"):  # too long for a VARCHAR: the passage is its slice of the cleaned text
            document = self.document(row["doc_id"])
            text = document.clean_text[row["clean_start"] : row["clean_end"]] if document else ""
            fields.update(text=text, folded=fold_script(text))
        return StoredPassage(**fields)

    def document(self, doc_id: str) -> StoredDocument | None:
        rows = self._connection.call("read a document", lambda client, seconds: client.query(
            self._names.documents, filter=f"doc_id == {literal(doc_id)}", output_fields=list(DOCUMENT_FIELDS),
            limit=MAX_RESULTS, timeout=seconds), self._names.documents)
        parts = sorted(rows, key=lambda row: row["part"])
        if not parts or parts[0]["part"] != 0:
            return None
        meta = parts[0]["meta"]
        parts = parts[: meta.get("parts", len(parts))]  # parts beyond it: left by a longer earlier version
        extracted = "".join(p["extracted"] for p in parts) if meta.get("extracted") else None
        return StoredDocument(
            doc_id=doc_id, title=meta["title"], language=meta["language"], sha256=meta["sha256"],
            url=meta.get("url"), date=meta.get("date"), clean_text="".join(p["clean"] for p in parts),
            original_length=meta["original_length"], format=meta["format"], page_starts=meta["page_starts"],
            passage_count=meta["passages"], extracted_text=extracted,
        )

    def documents(self, folder: str | None = None, offset: int = 0, limit: int = 100) -> list[dict]:
        """A page of documents in doc_id order, each a dict of DOCUMENT_LISTING."""
        listing, first, last = self._folder_range(folder)
        start = first + max(offset, 0)
        return [dict(row) for row in listing[start : min(start + max(limit, 0), last)]]

    def document_count(self, folder: str | None = None) -> int:
        _, first, last = self._folder_range(folder)
        return last - first

    def _folder_range(self, folder: str | None) -> tuple[list[dict], int, int]:
        """The cached listing and the [first, last) range of `folder`'s documents in it (contiguous: sorted)."""
        listing, ids = self._sorted_listing()
        if folder is None or not folder_name(folder):
            return listing, 0, len(listing)
        prefix = folder_name(folder) + "/"
        end = prefix[:-1] + chr(ord("/") + 1)
        return listing, bisect.bisect_left(ids, prefix), bisect.bisect_left(ids, end)

    def _sorted_listing(self) -> tuple[list[dict], list[str]]:
        """Every document's listing row, sorted by doc_id: read once per store (one build), then paged in memory."""
        with self._listing_lock:
            if self._listing is None:
                rows = sorted(self._listing_rows(), key=lambda row: row["doc_id"])
                self._listing, self._listing_ids = rows, [row["doc_id"] for row in rows]
            return self._listing, self._listing_ids

    def _listing_rows(self) -> Iterator[dict]:
        for row in scan(self._connection, "list documents", self._names.documents, "part == 0",
                        ["doc_id", "meta"]):
            meta = {**row["meta"], "doc_id": row["doc_id"]}
            yield {key: meta.get(key) for key in DOCUMENT_LISTING}

    def document_ids(self) -> list[str]:
        return list(self._sorted_listing()[1])

    def ping(self) -> None:
        exists = self._connection.call("reach the passages collection", lambda client, seconds: client.has_collection(
            self._names.passages, timeout=seconds))
        if not exists:
            raise StoreUnavailable(f"Milvus collection {self._names.passages} at {self._connection.uri} is gone")


SCAN_BATCH = 1_000
# Passages averaged into a manifest's mean vector. A uniform sample of 20k unit 384-d vectors errs by about
# 0.05 / √20000 ≈ 4e-4 a component (estimated, not measured); milvus-lite scanned 20k in 3.3–4.4 s (measured).
MEAN_SAMPLE = 20_000


def scan(connection: Connection, what: str, collection: str, filter: str, fields: list[str],
         consistency: str = "Bounded") -> Iterator[dict]:
    """Every row matching `filter`, a batch per bounded request (query_iterator: no unbounded query).
    A writer reading its own writes asks for "Strong" consistency; readers of a published build need not."""
    def start(client: MilvusClient, seconds: float):
        return client.query_iterator(collection, batch_size=SCAN_BATCH, filter=filter, output_fields=fields,
                                     timeout=seconds, consistency_level=consistency)

    iterator = connection.call(what, start, collection)
    try:
        while batch := connection.call(what, lambda client, seconds: iterator.next(), collection):
            yield from batch
    finally:
        iterator.close()


def mean_of_vectors(connection: Connection, collection: str, passages: int, dim: int, consistency: str) -> list[float]:
    """The mean of the vectors a collection of `passages` holds, read back: all of them up to MEAN_SAMPLE, else
    those whose id (63 bits of a hash) is below 2^63 / stride, a uniform sample of about MEAN_SAMPLE (milvus-lite's
    filters have no modulo). A writer updating in place reads it at seal: a running sum would need each replaced
    passage's old vector first."""
    stride = max(1, math.ceil(passages / MEAN_SAMPLE))
    rows = iter(scan(connection, "average the vectors", collection, f"id < {2**63 // stride}" if stride > 1 else "",
                     ["vector"], consistency))
    batches = iter(lambda: [row["vector"] for row in itertools.islice(rows, 4096)], [])
    return mean_vector((np.array(batch, dtype=np.float32) for batch in batches), dim)
