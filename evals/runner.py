"""Build (or reuse) an index per eval corpus, ask every row's questions in each mode, collect metrics.

Indexes are cached in evals/.cache/<corpus>-<units>u[-<backend>]/ (an index root like the service's), keyed
by everything that changes what the indexer writes: the corpus files, the encoder's identity (model, backend and
weights), the passage size and overlap, the index format, and the source of text/ and indexer/.
Questions are encoded once per distinct text, in batches, and the vector is passed to all three modes,
which run over the same index.
"""
from __future__ import annotations

import hashlib
import os
import platform
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm import tqdm

from evals import formats
from evals.datasets import DEFAULT_DATASETS, PROJECT_ROOT, Corpus, Query, Row, load_rows
from evals.metrics import CUTOFF, best_relevance, first_relevant_rank, gold_relevance, share, summarize
from stores.contract import FORMAT_VERSION, IndexUnusable, StoreLocation
from stores.embedded import EmbeddedLocation
from indexer.build import build_index
from indexer.embedding import FP32_BACKEND, Embedder, load_embedder
from indexer.passages import Chunking
from service.relevance import relevance_model
from service.retrieval import Hit, Mode, Retriever

MODES: tuple[Mode, ...] = ("hybrid", "bm25", "dense")
ANSWER_K = 5
ENCODE_BATCH = 64
CACHE_ROOT = PROJECT_ROOT / "evals" / ".cache"
KEY_FILE = "eval-cache-key"
INDEXER_SOURCES = ("text", "extract", "indexer", "stores")  # extract/: what the formats set's PDF, .docx and HTML become


@dataclass
class ModeResult:
    ranks: list[int]  # per query: rank of the first gold hit, 0 if none in the top 10
    metrics: dict[str, float]
    answer_at_5: float | None = None  # seed and formats rows: share of questions with the answer in a top-5 passage
    page_at_5: float | None = None  # formats rows: share of PDF-gold questions whose answer is on a top-5 hit's pages
    # hybrid, per question: the best relevance of its gold hits in the top 5 (rows with gold; R@5 kept at a
    # min_relevance is the share reaching it) or of all its top 5 (abstain rows: below it, it abstains); NO_HIT: none
    relevances: list[float] | None = None


@dataclass
class RowResult:
    name: str
    set_name: str
    corpus: str
    script: str | None
    query_ids: list[str]
    modes: dict[str, ModeResult]

    @property
    def questions(self) -> int:
        return len(self.query_ids)


@dataclass
class IndexInfo:
    passages: int
    build_seconds: float
    cached: bool  # reused from evals/.cache (its build time is not in this run's wall time)


@dataclass
class RunResult:
    started: str
    seconds: float
    sets: list[str]
    limit: int | None
    model_id: str
    chunking: Chunking
    machine: dict[str, str]
    indexes: dict[str, IndexInfo]  # corpus name → its index
    store: str  # "embedded", or the other store every row was asked against (--store)
    rows: list[RowResult] = field(default_factory=list)
    min_relevance: float = 0.0  # the default threshold /api/ask applied
    passage_backend: str = FP32_BACKEND  # how the indexes' passages were encoded


def source_hash(root: Path = PROJECT_ROOT, folders: tuple[str, ...] = INDEXER_SOURCES) -> str:
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def index_key(corpus: Corpus, encoder: str, chunking: Chunking) -> str:
    parts = [corpus.fingerprint(), encoder, str(chunking.target_units), str(chunking.overlap_units),
             str(FORMAT_VERSION), source_hash()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def cache_dir(cache_root: Path, corpus: Corpus, embedder: Embedder, chunking: Chunking) -> Path:
    """One folder per corpus, passage size and backend, so fp32, bf16 and int8 indexes never replace each other."""
    suffix = "" if embedder.backend == FP32_BACKEND else f"-{embedder.backend}"
    return cache_root / f"{corpus.name}-{chunking.target_units}u{suffix}"


def cached_retriever(corpus: Corpus, embedder: Embedder, cache_root: Path = CACHE_ROOT,
                     rebuild: bool = False, chunking: Chunking = Chunking(),
                     store: StoreChoice | None = None) -> tuple[Retriever, bool]:
    """The corpus's index from the cache if its key still matches (True), else built again and cached. A build
    after a code change is incremental: the folder's document and embedding caches are keyed by content and
    pipeline version, so only what the change affects is re-read or re-encoded (--rebuild: everything)."""
    root = cache_dir(cache_root, corpus, embedder, chunking)
    location = store.location(root) if store else EmbeddedLocation(root)
    key = index_key(corpus, embedder.identity or embedder.model_id, chunking) + (store.name if store else "")
    key_file = root / (KEY_FILE + (f"-{store.name}" if store else ""))
    if not rebuild and key_file.is_file() and key_file.read_text() == key:
        try:
            return _open(location, embedder), True
        except IndexUnusable as error:
            print(f"cached index {location} unusable ({error}); rebuilding", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix=f"eval-{corpus.name}-") as tmp:
        corpus.write(Path(tmp))
        print(f"indexing {corpus.name} ({len(corpus.files)} documents) into {location}", file=sys.stderr)
        result = build_index(Path(tmp), root, embedder, progress=True, chunking=chunking, force=rebuild,
                             location=location)
    print(result.summary(), file=sys.stderr)
    key_file.write_text(key)
    return _open(location, embedder), False


@dataclass(frozen=True)
class StoreChoice:
    """A store other than the embedded one for every eval index: a Milvus server, one collection per corpus."""
    name: str
    uri: str

    def location(self, root: Path) -> StoreLocation:
        from stores.milvus import MilvusLocation

        # a batch run, not a service: a search slowed by other work on the machine waits instead of failing
        return MilvusLocation(self.uri, re.sub(r"\W", "_", f"eval_{root.name}"), timeout=120.0)


def _open(location: StoreLocation, embedder: Embedder) -> Retriever:
    return Retriever(location.open(embedder.model_id, embedder.dim), embedder)


class QuestionEncoder:
    """Encodes questions in batches through the retriever, each distinct text once per run."""

    def __init__(self, batch_size: int = ENCODE_BATCH) -> None:
        self.batch_size = batch_size
        self._vectors: dict[str, np.ndarray] = {}

    def encode(self, retriever: Retriever, texts: list[str], label: str = "") -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        with tqdm(total=len(missing), unit="question", desc=f"encoding {label}".strip(),
                  disable=not missing) as bar:
            for start in range(0, len(missing), self.batch_size):
                batch = missing[start : start + self.batch_size]
                self._vectors.update(zip(batch, retriever.encode(batch)))
                bar.update(len(batch))
        return np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)


def pdf_pages(retriever: Retriever, row: Row, doc_id: str) -> tuple[str, ...]:
    """Each page's text (normalized, no whitespace) of a PDF in the row's corpus, from the extractor's page_starts;
    checked against the text the index's offsets point into, so the pages are the ones hits were numbered by."""
    original, pages = formats.pdf_pages(row.corpus.files[doc_id])
    stored = retriever.store.document(doc_id)
    if stored is None or stored.extracted_text != original:
        raise RuntimeError(f"{doc_id}: re-extracted text differs from the index's; rebuild (--rebuild)")
    return pages


def on_gold_pages(retriever: Retriever, row: Row, query: Query, hits: list[Hit]) -> bool:
    """page@5: a top-5 hit from the gold PDF whose pages [page, page_end or page] hold the answer."""
    return any(
        formats.answer_on_pages(pdf_pages(retriever, row, h.doc_id), h.page, h.page_end, query.answer or "")
        for h in hits[:ANSWER_K] if h.doc_id in query.gold
    )


def evaluate_row(retriever: Retriever, row: Row, encoder: QuestionEncoder) -> RowResult:
    vectors = encoder.encode(retriever, [q.text for q in row.queries], row.name)
    if row.set_name == "abstain":  # no gold: only how relevant the shipped fusion's answer is
        best = [best_relevance([h.relevance for h in retriever.ask(q.text, ANSWER_K, vector=v).hits])
                for q, v in zip(row.queries, vectors)]
        return RowResult(row.name, row.set_name, row.corpus.name, row.script, [q.id for q in row.queries],
                         {"hybrid": ModeResult([], {}, relevances=best)})
    kept: list[float] = []
    ranks: dict[str, list[int]] = {mode: [] for mode in MODES}
    answered: dict[str, list[bool]] = {mode: [] for mode in MODES}
    paged: dict[str, list[bool]] = {mode: [] for mode in MODES}
    for query, vector in tqdm(zip(row.queries, vectors), total=len(row.queries), unit="question",
                              desc=f"asking {row.name}"):
        on_pdf = query.answer is not None and row.set_name == "formats" and any(g.endswith(".pdf") for g in query.gold)
        for mode in MODES:
            hits = retriever.ask(query.text, CUTOFF, mode=mode, vector=vector).hits
            ranks[mode].append(first_relevant_rank([h.doc_id for h in hits], query.gold))
            if mode == "hybrid":
                kept.append(gold_relevance(hits[:ANSWER_K], query.gold))
            if query.answer is not None:
                answered[mode].append(any(query.answer in h.text for h in hits[:ANSWER_K]))
            if on_pdf:
                paged[mode].append(on_gold_pages(retriever, row, query, hits))
    modes = {
        mode: ModeResult(ranks[mode], summarize(ranks[mode]), share(answered[mode]) if answered[mode] else None,
                         share(paged[mode]) if paged[mode] else None, kept if mode == "hybrid" else None)
        for mode in MODES
    }
    return RowResult(row.name, row.set_name, row.corpus.name, row.script, [q.id for q in row.queries], modes)


def evaluate_rows(rows: list[Row], embedder: Embedder, encoder: QuestionEncoder, cache_root: Path = CACHE_ROOT,
                  rebuild: bool = False, chunking: Chunking = Chunking(),
                  store: StoreChoice | None = None) -> tuple[list[RowResult], dict[str, IndexInfo]]:
    """Every row over its corpus's index (each corpus indexed once); also what each index is."""
    retrievers: dict[str, Retriever] = {}
    indexes: dict[str, IndexInfo] = {}
    results = []
    for row in rows:
        name = row.corpus.name
        if name not in retrievers:
            retrievers[name], cached = cached_retriever(row.corpus, embedder, cache_root, rebuild, chunking, store)
            indexes[name] = IndexInfo(retrievers[name].passage_count,
                                      retrievers[name].store.manifest["build_seconds"], cached)
        results.append(evaluate_row(retrievers[name], row, encoder))
    return results, indexes


def run(sets: list[str], datasets: Path = DEFAULT_DATASETS, limit: int | None = None, rebuild: bool = False,
        cache_root: Path = CACHE_ROOT, model: str | None = None, chunking: Chunking = Chunking(),
        backend: str | None = None, store: StoreChoice | None = None) -> RunResult:
    """The named sets end to end; the wall time counts loading the model and data, indexing and asking."""
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    embedder = load_embedder(model, backend)
    rows = [row.limited(limit) for name in sets for row in load_rows(name, datasets)]
    results, indexes = evaluate_rows(rows, embedder, QuestionEncoder(), cache_root, rebuild, chunking, store)
    return RunResult(
        started=started.isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - clock, 1),
        sets=list(sets),
        limit=limit,
        model_id=embedder.model_id,
        passage_backend=embedder.backend,
        chunking=chunking,
        machine=machine_description(),
        indexes=indexes,
        store=store.name if store else "embedded",
        rows=results,
        min_relevance=relevance_model().default_min_relevance,
    )


def machine_description() -> dict[str, str]:
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "ram": _total_ram(),
        "os": platform.platform(),
        "python": platform.python_version(),
        **{name: _version(name) for name in ("torch", "sentence-transformers", "onnxruntime", "faiss-cpu", "bm25s")},
    }


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")


def _total_ram() -> str:
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
        kib = next(int(line.split()[1]) for line in lines if line.startswith("MemTotal:"))
    except (OSError, StopIteration, ValueError):
        return "unknown"
    return f"{kib / 1024 ** 2:.1f} GiB"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
