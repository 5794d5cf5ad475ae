"""Build an index from a corpus folder into a store (stores/), doing only the work of what changed.

  1. read     walk the corpus, hash every file; a file whose bytes were processed before (same pipeline
              version) comes from the document cache, the others are extracted, cleaned, chunked and
              tokenized in worker processes under a per-file time limit (indexer/workers.py)
  2. plan     compare each document's version (its bytes, the pipeline, its metadata, the encoder) with what
              the store holds: only the new and changed documents are written and the gone ones deleted (the
              embedded store holds what its published snapshot holds, when a build can start from it; else
              nothing, and every document is written)
  3. embed    passages of the documents to write whose folded text this encoder never embedded are encoded
              (in process, or on Ray with --ray) into the embedding cache; the model loads only then
  4. store    the documents to write go to the store with their vectors from the cache, in corpus order
  5. publish  the store makes the build the served one (embedded: FAISS + BM25 + atomic switch of
              INDEX/current); the caches drop entries neither this nor the previous build used (the
              document cache keeps every corpus file's, read or not; the embedding cache drops nothing
              after a build that kept documents without looking up their vectors)

The whole build holds INDEX/.build.lock, so builds of one index never overlap. `force` ignores both caches
and what the store holds (it re-reads, re-embeds and re-writes everything) and refills them. An incremental build
holds the same passages, vectors and BM25 scores as a forced one; the embedded store's ids may be in another order.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from extract import Limits
from indexer.caches import DocumentCache, EmbeddingCache
from indexer.documents import DEFAULT_MAX_BYTES, CorpusFile, CorpusReport, iter_corpus_files, read_corpus
from indexer.embedding import Encoder, InProcessEngine, PassageEngine
from indexer.freshness import corpus_fingerprint
from indexer.lock import build_lock
from indexer.passages import Chunking
from indexer.process import Settings, pipeline_version
from indexer.progress import BuildResult, Progress, Timed
from indexer.workers import DEFAULT_TIMEOUT, DocumentWorkers, Task
from stores.contract import FORMAT_VERSION, DocumentMeta, StoreLocation, StoreWriter
from stores.embedded import EmbeddedLocation

EMBED_LOOKUP_DOCUMENTS = 64  # documents read from the caches at a time (one query each, not one per document)
_NOT_CACHED = ("took longer", "crashed")  # reasons that depend on the machine's load, not the file: retried


def build_index(corpus: Path, root: Path, embedder: Encoder, progress: bool = True,
                chunking: Chunking = Chunking(), max_file_bytes: int = DEFAULT_MAX_BYTES, limits: Limits = Limits(),
                force: bool = False, wait: bool = True, file_timeout: float = DEFAULT_TIMEOUT,
                report: Callable[[Progress], None] | None = None,
                on_wait: Callable[[int | None], None] | None = None,
                before: Callable[[], None] | None = None,
                location: StoreLocation | None = None, engine: PassageEngine | None = None) -> BuildResult:
    """Build and publish into `location` (default: the embedded store at `root`, which also holds the caches,
    the lock and the jobs); `engine` encodes passages (default: `embedder`, in this process). Raises ValueError
    when nothing is indexable, indexer.lock.BuildLocked when another build runs and `wait` is False. `before`
    runs once the lock is held (jobs claim their work)."""
    with build_lock(root, wait, on_wait):
        if before is not None:
            before()
        builder = _Build(corpus, root, location or EmbeddedLocation(root), embedder, engine or InProcessEngine(embedder),
                         Settings(chunking, limits), max_file_bytes, force, file_timeout, report or (lambda p: None),
                         progress)
        return builder.run()


@dataclass(frozen=True)
class _Readable:
    """A corpus file the document cache holds a processed form of, and the version it would be stored as."""
    file: CorpusFile
    meta: DocumentMeta
    key: bytes  # in the document cache
    version: str


class _Build:
    def __init__(self, corpus: Path, root: Path, location: StoreLocation, embedder: Encoder, engine: PassageEngine,
                 settings: Settings, max_file_bytes: int, force: bool, file_timeout: float,
                 report: Callable[[Progress], None], bar: bool) -> None:
        self.corpus, self.root, self.location, self.embedder, self.engine = corpus, root, location, embedder, engine
        self.settings, self.max_file_bytes, self.force, self.file_timeout, self.report, self.bar = (
            settings, max_file_bytes, force, file_timeout, report, bar)
        self.pipeline = pipeline_version(settings)
        self.encoder = embedder.identity or embedder.model_id
        self.progress = Progress()
        self.corpus_report = CorpusReport()
        self.build_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")

    def run(self) -> BuildResult:
        started = time.perf_counter()
        fingerprint = corpus_fingerprint(self.corpus)
        documents = DocumentCache(self.root)
        embeddings = EmbeddingCache(self.root, self.encoder)
        writer: StoreWriter | None = None
        try:
            with self._stage("read"):
                files = self._read(documents)
                readable = self._readable(files, documents)
            with self._stage("plan"):
                writer = self.location.writer(self.build_id, self.embedder.model_id)
                stored = writer.stored()
                changed = [r for r in readable if self.force or stored.get(r.meta.doc_id) != r.version]
                gone = sorted(stored.keys() - {r.meta.doc_id for r in readable})
            with self._stage("embed"):
                self._embed_missing(changed, documents, embeddings)
            with self._stage("store"):
                self._write(writer, changed, gone, documents, embeddings)
            with self._stage("seal"):
                sealed = writer.seal()
            seconds = time.perf_counter() - started
            manifest = self._manifest(readable, sealed, fingerprint, seconds)
            with self._stage("publish"):
                where = writer.publish(manifest)
                documents.published(keep=[key for _, _, key in files])  # the failed ones too: never retried
                embeddings.published(collect=len(changed) == len(readable))  # kept documents' vectors unread
        finally:
            if writer is not None:
                writer.close()
            documents.close()
            embeddings.close()
        self.progress.stage = "done"
        self.report(self.progress)
        return BuildResult(where, manifest)

    def _stage(self, name: str) -> Timed:
        self.progress.stage = name
        self.report(self.progress)
        return Timed(self.progress.seconds, name)

    def _read(self, cache: DocumentCache) -> list[tuple[CorpusFile, str, bytes]]:
        """(file, sha256, cache key) of every readable file, after processing those the cache lacks."""
        self.progress.files_total = sum(1 for _ in iter_corpus_files(self.corpus, CorpusReport()))
        resolved: list[tuple[CorpusFile, str, bytes]] = []
        scheduled: set[bytes] = set()

        def tasks() -> Iterator[Task]:
            for file, data in read_corpus(self.corpus, self.corpus_report, self.max_file_bytes):
                sha256 = hashlib.sha256(data).hexdigest()
                key = self._cache_key(sha256, file.format)
                resolved.append((file, sha256, key))
                if key in scheduled or (not self.force and cache.contains(key)):
                    self._file_done()
                    continue
                scheduled.add(key)
                yield Task(file.doc_id, data, file.format)

        with DocumentWorkers(self.settings, processes=min(2, os.cpu_count() or 1), timeout=self.file_timeout) as workers:
            for task, result in workers.run(tasks()):
                key = self._cache_key(hashlib.sha256(task.data).hexdigest(), task.format)
                if isinstance(result, str) and result.startswith(_NOT_CACHED):
                    self.corpus_report.skip(task.doc_id, result)
                elif isinstance(result, str):  # this file can never be read: remembered, not tried again
                    cache.put_failure(key, result)
                else:
                    cache.put(key, result)
                self.progress.files_processed += 1
                self._file_done()
        self.progress.files_done = self.progress.files_total  # files over the cap or unreadable count as done
        return resolved

    def _readable(self, files: list[tuple[CorpusFile, str, bytes]], cache: DocumentCache) -> list[_Readable]:
        """The files whose processed form the cache holds (the others are reported skipped), in corpus order."""
        skipped = {s.path for s in self.corpus_report.skipped}
        failures = cache.failures([key for _, _, key in files])
        readable = []
        for file, sha256, key in files:
            failure = failures[key]
            if file.doc_id in skipped or failure is not None:
                if failure:
                    self.corpus_report.skip(file.doc_id, failure)
                continue
            meta = DocumentMeta(file.doc_id, sha256, file.meta.get("title") or "", file.meta.get("url"), file.meta.get("date"))
            readable.append(_Readable(file, meta, key, self._version(key, meta)))
        if not readable:
            raise ValueError(f"no indexable text in {self.corpus} ({len(self.corpus_report.skipped)} files skipped)")
        return readable

    def _version(self, key: bytes, meta: DocumentMeta) -> str:
        """What a stored document was made from: its bytes, the pipeline (in `key`), its metadata, the encoder."""
        described = hashlib.sha256(f"{meta.title}\0{meta.url}\0{meta.date}\0{self.encoder}".encode()).hexdigest()
        return f"{key.hex()}-{described[:16]}"

    def _embed_missing(self, changed: list[_Readable], documents: DocumentCache, embeddings: EmbeddingCache) -> None:
        """Encode, into the embedding cache, every passage of `changed` whose vector it lacks (each text once)."""
        missing: dict[bytes, str] = {}
        for chunk in _chunks(changed, EMBED_LOOKUP_DOCUMENTS):
            texts = {embeddings.key(p.folded): p.folded
                     for document in documents.get_many([r.key for r in chunk]) for p in document.passages}
            found = set() if self.force else embeddings.holds(list(texts))
            missing.update((key, text) for key, text in texts.items() if key not in found)
        started = time.perf_counter()
        self.embedder.expect(len(missing))
        with tqdm(total=len(missing), unit="passage", desc="embedding", disable=not self.bar or not missing) as bar:
            for keys, vectors in self.engine.embed(missing.items()):
                embeddings.put_many(keys, vectors)
                self.progress.passages_embedded += len(keys)
                bar.update(len(keys))
                self.report(self.progress)
        self.progress.seconds["encode"] = time.perf_counter() - started

    def _write(self, writer: StoreWriter, changed: list[_Readable], gone: list[str], documents: DocumentCache,
               embeddings: EmbeddingCache) -> None:
        for chunk in _chunks(changed, EMBED_LOOKUP_DOCUMENTS):
            loaded = documents.get_many([r.key for r in chunk])
            keys = [[embeddings.key(p.folded) for p in document.passages] for document in loaded]
            vectors = embeddings.get_many([key for passage_keys in keys for key in passage_keys])
            for readable, document, passage_keys in zip(chunk, loaded, keys):
                meta = readable.meta if readable.meta.title else replace(readable.meta, title=document.title)
                rows = np.stack([vectors[key] for key in passage_keys]).astype(np.float32, copy=False)
                writer.write(meta, document, rows, readable.version)
                self.progress.passages_total += len(document.passages)
                self.progress.documents_written += 1
        self.progress.passages_cached = max(0, self.progress.passages_total - self.progress.passages_embedded)
        writer.delete(gone)
        self.progress.documents_deleted = len(gone)

    def _cache_key(self, sha256: str, format: str) -> bytes:
        return DocumentCache.key(sha256, f"{self.pipeline}:{format}")

    def _file_done(self) -> None:
        self.progress.files_done += 1
        self.report(self.progress)

    def _manifest(self, readable: list[_Readable], sealed: dict, fingerprint: str, seconds: float) -> dict:
        p = self.progress
        return {
            "format_version": FORMAT_VERSION,
            "build_id": self.build_id,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            # the backend that encoded this build's new passages; carried-over ones keep theirs (all interchangeable)
            "model": {"id": self.embedder.model_id, "dim": sealed["dim"], "passage_backend": self.embedder.backend},
            "vector_index": sealed["vector_index"],
            "chunking": asdict(self.settings.chunking),
            "limits": asdict(self.settings.limits),
            "pipeline": self.pipeline,
            "encoder": self.encoder,  # the embedding cache's identity of the encoder
            "max_file_bytes": self.max_file_bytes,
            "counts": {"documents": len(readable), "passages": sealed["passages"],
                       "skipped": len(self.corpus_report.skipped)},
            "build_seconds": round(seconds, 2),
            "encode_seconds": round(p.seconds.get("encode", 0.0), 2),
            "work": {
                "files_total": p.files_total, "files_processed": p.files_processed,
                "documents_written": p.documents_written, "documents_deleted": p.documents_deleted,
                "passages_embedded": p.passages_embedded, "passages_cached": p.passages_cached,
                "forced": self.force, "stage_seconds": {k: round(v, 3) for k, v in p.seconds.items()},
            },
            "corpus": {"root": str(self.corpus), "fingerprint": fingerprint,
                       "files": {r.meta.doc_id: r.meta.sha256 for r in readable}},
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.corpus_report.skipped],
            "mean_vector": sealed["mean_vector"],  # last: 384 numbers (service/relevance.py reads it)
        }


def _chunks(items: list, size: int) -> Iterator[list]:
    for first in range(0, len(items), size):
        yield items[first : first + size]
