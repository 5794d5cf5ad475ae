"""The store contract: what the indexer writes into a passage store and what the retriever reads from it.

Two stores keep it: the embedded one (stores/embedded.py: SQLite + bm25s + FAISS in an index folder, one
immutable snapshot per build) and Milvus (stores/milvus.py: one collection updated in place by document).
These are protocols, not base classes: code above the seam (indexer/build.py, service/retrieval.py) takes
any object with these methods and never asks which store it has.

Passage ids are opaque integers chosen by the store; scores are "higher is better" (cosine for `dense`,
BM25 > 0 for `keyword`), comparable within one call only.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from indexer.process import ProcessedDocument

FORMAT_VERSION = 5  # 2: passages store their script-folded text; 3: formats, pages; 4: pivot words; 5: mean_vector
# Which words a keyword search matches: the passages' own keyword tokens, or their pivot words (English stems of
# the tokens and of Chinese tokens' translations, text/bilingual.py), each with its own BM25 statistics.
KeywordSide = Literal["own", "pivot"]


def mean_vector(batches: Iterator[np.ndarray], dim: int) -> list[float]:
    """The mean of every vector in `batches` (float64 sums), rounded for the manifest; zeros if there are none."""
    return rounded_mean(*vector_sum(batches, dim))


def vector_sum(batches: Iterator[np.ndarray], dim: int) -> tuple[np.ndarray, int]:
    """The float64 sum of every vector in `batches`, and how many there were."""
    total, count = np.zeros(dim, dtype=np.float64), 0
    for batch in batches:
        total += np.asarray(batch, dtype=np.float64).sum(axis=0)
        count += len(batch)
    return total, count


def rounded_mean(total: np.ndarray, count: int) -> list[float]:
    """The mean of `count` vectors summing to `total`, rounded for the manifest; zeros if there are none."""
    return [round(float(v), 6) for v in total / max(count, 1)]


class IndexUnusable(RuntimeError):
    """A published index that cannot be used; the message says why, in words a user can act on."""


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or read right now (a server down); the message says why. Asks get 503."""


def check_model(manifest: dict, model_id: str, dim: int, where: str) -> None:
    """IndexUnusable unless the build at `where` was made with this model (its vectors are another space)."""
    built_with = manifest["model"]
    if (built_with["id"], built_with["dim"]) == (model_id, dim):
        return
    same_weights = built_with["id"].partition("+")[0] == model_id.partition("+")[0]
    setting = "QA_BACKEND to the backend it names" if same_weights else f"QA_MODEL={built_with['id']}"
    raise IndexUnusable(
        f"{where} was built with model {built_with['id']} ({built_with['dim']}-d) but the service runs "
        f"{model_id} ({dim}-d); rebuild it with this model or set {setting}"
    )


@dataclass(frozen=True)
class Scope:
    """Which passages a question may cite: a corpus sub-folder, a document language; None: any."""
    folder: str | None = None
    language: str | None = None

    @property
    def everything(self) -> bool:
        return self.folder is None and self.language is None


@dataclass(frozen=True)
class Candidates:
    """One signal's candidates as parallel arrays, so fusion runs vectorized (as ~300 objects a question they
    cost ~0.5 ms more: ask without the encode 5.0 → 4.5 ms): passage ids, their scores and their documents' languages (fusion weighs by
    question × passage language). Order carries no meaning beyond breaking ties the same way every time."""
    ids: np.ndarray  # int64
    scores: np.ndarray  # float64
    languages: np.ndarray  # str

    @classmethod
    def empty(cls) -> Candidates:
        return cls(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, str))

    def __len__(self) -> int:
        return len(self.ids)

    def by_id(self) -> dict[int, float]:
        return dict(zip(self.ids.tolist(), self.scores.tolist()))


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
    page: int | None = None  # 1-based page the passage starts on, for paginated documents (PDF)
    page_end: int | None = None  # the page it ends on, when later than `page`


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
    format: str
    page_starts: list[int]  # cleaned-text offsets where each page begins; [] when not paginated
    passage_count: int
    extracted_text: str | None  # the text PDF / Word offsets point into (None: offsets are into the file)


@dataclass(frozen=True)
class DocumentMeta:
    """A corpus file's identity and its corpus/manifest.json metadata, beside its processed content."""
    doc_id: str
    sha256: str
    title: str
    url: str | None = None
    date: str | None = None


EXTRACTED_FORMATS = ("pdf", "docx")  # formats whose offsets point into extracted text, not into the file
DOCUMENT_LISTING = ("doc_id", "title", "language", "format", "passages", "sha256")  # keys of documents()


class PassageStore(Protocol):
    """One published build, read by the retriever and the document API."""

    @property
    def manifest(self) -> dict:
        """format_version, build_id, created, model {id, dim}, counts {documents, passages, skipped},
        mean_vector (the mean of every passage vector: a vector's dot product with it is its mean cosine to the
        passages), …"""

    @property
    def passage_count(self) -> int: ...

    def dense(self, vector: np.ndarray, k: int, scope: Scope) -> Candidates:
        """The k passages in `scope` nearest the (normalized) question vector, by cosine."""

    def keyword(self, tokens: list[str], k: int, scope: Scope, side: KeywordSide = "own") -> Candidates:
        """The k passages in `scope` with the best BM25 for the question's keyword tokens (side "own") or its
        pivot words (side "pivot"); none if none matches. A store may leave out words found in more than half of
        its passages while others remain (the embedded one does: stores/bm25.py, KeywordIndex.searched_words)."""

    def known(self, tokens: list[str]) -> np.ndarray:
        """Per keyword token (bool): does any passage contain it? A question whose words no passage has asks
        about something the corpus does not hold (service/relevance.py). Not scoped: within a scope, a word
        common elsewhere would be looked for through all its passages (measured: 4.5 ms a question at 1M
        passages scoped to one language, against 0.04 ms unscoped)."""

    def passages(self, ids: list[int]) -> dict[int, StoredPassage]: ...

    def vectors(self, ids: list[int]) -> np.ndarray:
        """The passages' stored vectors, row i for ids[i] (an approximation where the index quantizes them)."""

    def document(self, doc_id: str) -> StoredDocument | None: ...

    def documents(self, folder: str | None = None, offset: int = 0, limit: int = 100) -> list[dict]:
        """A page of documents in doc_id order, each a dict of DOCUMENT_LISTING."""

    def document_count(self, folder: str | None = None) -> int: ...

    def ping(self) -> None:
        """Raise StoreUnavailable if the store cannot answer now (readiness); quick and bounded."""


class StoreWriter(Protocol):
    """One build's writes, starting with what the store holds (the embedded store: its published snapshot, copied;
    nothing when it cannot be continued)."""

    def stored(self) -> dict[str, str]:
        """doc_id → the version it was written with, for every document the store holds now."""

    def write(self, meta: DocumentMeta, document: ProcessedDocument, vectors: np.ndarray, version: str) -> None:
        """Store (or replace) a document and its passages; `vectors` row i embeds document.passages[i]."""

    def delete(self, doc_ids: Iterable[str]) -> None: ...

    def seal(self) -> dict:
        """Finish the writes (flush, build indexes); returns what only the store knows, for the manifest:
        {"passages": count held, "dim": vector size, "vector_index": how vectors are searched,
        "mean_vector": the mean of every vector held, as a list}."""

    def publish(self, manifest: dict) -> str:
        """Make the sealed writes the served build (readers see manifest["build_id"]); returns where it went."""

    def close(self) -> None:
        """Release the writer; writes never published are discarded where the store allows it."""


class StoreLocation(Protocol):
    """Where builds are published: an index folder, or a Milvus collection."""

    def published(self) -> str | None:
        """The id of the build served there now (None: none yet). Cheap: the service polls it to reload."""

    def manifest(self) -> dict | None:
        """The published build's manifest, None if there is none (raises IndexUnusable if unreadable)."""

    def open(self, model_id: str, dim: int) -> PassageStore:
        """The published build, checked to be whole and made with this model; else IndexUnusable."""

    def writer(self, build_id: str, model_id: str) -> StoreWriter:
        """A writer for a new build made with `model_id` (a store holding another model's vectors starts over)."""
