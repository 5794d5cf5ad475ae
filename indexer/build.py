"""Build an index from a corpus folder, doing only the work of what changed since the last build.

  1. read     walk the corpus, hash every file; a file whose bytes were processed before (same pipeline
              version) comes from the document cache, the others are extracted, cleaned, chunked and
              tokenized in worker processes under a per-file time limit (indexer/workers.py)
  2. store    write a new snapshot in corpus order: SQLite passage store and BM25 from the processed documents
  3. embed    vectors from the embedding cache; only passages whose folded text was never embedded by this
              encoder are encoded (the model is loaded only then)
  4. publish  FAISS index, manifest, atomic switch of INDEX/current; the caches drop entries neither this nor
              the previous build used

The whole build holds INDEX/.build.lock, so builds of one index never overlap. `force` ignores both caches
(it re-reads and re-embeds everything) and refills them. Because every snapshot is written in the same
order from the same processed documents, an incremental build equals a forced one.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from extract import Limits
from indexer import index_dir
from indexer.caches import DocumentCache, EmbeddingCache
from indexer.documents import DEFAULT_MAX_BYTES, CorpusFile, CorpusReport, iter_corpus_files, read_corpus
from indexer.embedding import Encoder
from indexer.freshness import corpus_fingerprint
from indexer.keyword import VocabularyBuilder, save_keyword_index
from indexer.lock import build_lock
from indexer.passages import Chunking
from indexer.process import Settings, pipeline_version
from indexer.store import DocumentMeta, StoreWriter
from indexer.vectors import build_vector_index, index_spec, save_vector_index
from indexer.workers import DEFAULT_TIMEOUT, DocumentWorkers, Task

EMBED_READ_BATCH = 256
_FAILED = b"!"  # a document-cache value starting with this is the reason the file could not be read
_NOT_CACHED = ("took longer", "crashed")  # reasons that depend on the machine's load, not the file: retried


@dataclass
class Progress:
    """What a build has done so far; `report` gets it at every step (jobs show it over HTTP)."""
    stage: str = "waiting"
    files_total: int = 0
    files_done: int = 0
    files_processed: int = 0  # extracted now (the rest came from the document cache)
    passages_total: int = 0
    passages_embedded: int = 0  # encoded now
    passages_cached: int = 0  # taken from the embedding cache
    seconds: dict[str, float] = field(default_factory=dict)  # per stage


@dataclass(frozen=True)
class BuildResult:
    build: Path
    manifest: dict

    def summary(self) -> str:
        m = self.manifest
        work = m["work"]
        lines = [
            f"index {m['build_id']}: {m['counts']['documents']} documents, {m['counts']['passages']} passages, "
            f"{m['counts']['skipped']} skipped, {m['build_seconds']:.1f} s; processed {work['files_processed']} of "
            f"{work['files_total']} files, embedded {work['passages_embedded']} passages "
            f"({work['passages_cached']} from the cache); vectors: {m['vector_index']}",
        ]
        lines += [f"  skipped {s['path']}: {s['reason']}" for s in m["skipped"]]
        return "\n".join(lines)


def build_index(corpus: Path, root: Path, embedder: Encoder, progress: bool = True,
                chunking: Chunking = Chunking(), max_file_bytes: int = DEFAULT_MAX_BYTES, limits: Limits = Limits(),
                force: bool = False, wait: bool = True, file_timeout: float = DEFAULT_TIMEOUT,
                report: Callable[[Progress], None] | None = None,
                on_wait: Callable[[int | None], None] | None = None,
                before: Callable[[], None] | None = None) -> BuildResult:
    """Build and publish; raises ValueError when nothing is indexable, indexer.lock.BuildLocked when
    another build runs and `wait` is False. `before` runs once the lock is held (jobs claim their work)."""
    with build_lock(root, wait, on_wait):
        if before is not None:
            before()
        index_dir.remove_stale_temporaries(root)
        builder = _Build(corpus, root, embedder, Settings(chunking, limits), max_file_bytes, force, file_timeout,
                         report or (lambda p: None), progress)
        return builder.run()


class _Build:
    def __init__(self, corpus: Path, root: Path, embedder: Encoder, settings: Settings, max_file_bytes: int,
                 force: bool, file_timeout: float, report: Callable[[Progress], None], bar: bool) -> None:
        self.corpus, self.root, self.embedder, self.settings = corpus, root, embedder, settings
        self.max_file_bytes, self.force, self.file_timeout, self.report, self.bar = (
            max_file_bytes, force, file_timeout, report, bar)
        self.pipeline = pipeline_version(settings)
        self.progress = Progress()
        self.corpus_report = CorpusReport()
        self.build_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")

    def run(self) -> BuildResult:
        started = time.perf_counter()
        fingerprint = corpus_fingerprint(self.corpus)
        documents = DocumentCache(self.root)
        embeddings = EmbeddingCache(self.root, self.embedder.identity or self.embedder.model_id)
        tmp = index_dir.new_build_dir(self.root, self.build_id)
        try:
            with self._stage("read"):
                files = self._read(documents)
            with self._stage("store"):
                store, metas = self._write_store(files, documents, tmp)
            with self._stage("embed"):
                dim = self._embed(store, embeddings, tmp)
            with self._stage("vectors"):
                spec = self._vector_index(tmp, dim)
            store.close()
            manifest = self._manifest(metas, store.passage_count, dim, spec, fingerprint, time.perf_counter() - started)
            index_dir.write_manifest(tmp, manifest)
            with self._stage("publish"):
                build = index_dir.publish(self.root, tmp, self.build_id)
                documents.published()
                embeddings.published()
        finally:
            documents.close()
            embeddings.close()
            shutil.rmtree(tmp, ignore_errors=True)  # a build that failed leaves nothing behind (published: gone)
        self.progress.stage = "done"
        self.report(self.progress)
        return BuildResult(build, manifest)

    def _stage(self, name: str) -> _Timed:
        self.progress.stage = name
        self.report(self.progress)
        return _Timed(self.progress.seconds, name)

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
                    cache.put_raw(key, _FAILED + result.encode())
                else:
                    cache.put(key, result)
                self.progress.files_processed += 1
                self._file_done()
        self.progress.files_done = self.progress.files_total  # files over the cap or unreadable count as done
        return resolved

    def _cache_key(self, sha256: str, format: str) -> bytes:
        return DocumentCache.key(sha256, f"{self.pipeline}:{format}")

    def _file_done(self) -> None:
        self.progress.files_done += 1
        self.report(self.progress)

    def _write_store(self, files: list[tuple[CorpusFile, str, bytes]], cache: DocumentCache,
                     tmp: Path) -> tuple[StoreWriter, dict[str, str]]:
        store = StoreWriter(tmp / index_dir.STORE)
        vocabulary = VocabularyBuilder()
        metas: dict[str, str] = {}
        skipped = {s.path for s in self.corpus_report.skipped}
        for file, sha256, key in files:
            raw = cache.get_raw(key)
            if file.doc_id in skipped or raw is None:
                continue
            if raw.startswith(_FAILED):
                self.corpus_report.skip(file.doc_id, raw[1:].decode())
                continue
            document = cache.decode(raw)
            title = file.meta.get("title") or document.title
            store.add(DocumentMeta(file.doc_id, sha256, title, file.meta.get("url"), file.meta.get("date")), document)
            for passage in document.passages:
                vocabulary.add(passage.tokens)
            metas[file.doc_id] = sha256
        if store.passage_count == 0:
            store.close()
            raise ValueError(f"no indexable text in {self.corpus} ({len(self.corpus_report.skipped)} files skipped)")
        save_keyword_index(vocabulary.build(), tmp / index_dir.KEYWORDS)
        self.progress.passages_total = store.passage_count
        return store, metas

    def _embed(self, store: StoreWriter, cache: EmbeddingCache, tmp: Path) -> int:
        """Write every passage's vector, in id order, to tmp/vectors.f32; returns the dimension."""
        dim = 0
        with (tmp / "vectors.f32").open("wb") as out, tqdm(total=store.passage_count, unit="passage",
                                                           desc="embedding", disable=not self.bar) as bar:
            for texts in store.iter_folded(EMBED_READ_BATCH):
                vectors = self._vectors(texts, cache)
                dim = vectors.shape[1]
                out.write(vectors.tobytes())
                bar.update(len(texts))
                self.report(self.progress)
        return dim

    def _vectors(self, texts: list[str], cache: EmbeddingCache) -> np.ndarray:
        keys = [cache.key(text) for text in texts]
        found = {} if self.force else cache.get_many(keys)
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            first = {key: text for key, text in zip(keys, texts)}
            started = time.perf_counter()
            encoded = self.embedder.passages([first[key] for key in missing])
            self.progress.seconds["encode"] = self.progress.seconds.get("encode", 0.0) + time.perf_counter() - started
            cache.put_many(missing, encoded)
            found.update(zip(missing, encoded))
        self.progress.passages_embedded += len(missing)
        self.progress.passages_cached += len(texts) - len(missing)
        return np.stack([found[key] for key in keys]).astype(np.float32, copy=False)

    def _vector_index(self, tmp: Path, dim: int) -> str:
        raw = tmp / "vectors.f32"
        vectors = np.memmap(raw, dtype=np.float32, mode="r").reshape(-1, dim)
        spec = index_spec(len(vectors))
        save_vector_index(build_vector_index(vectors, spec), tmp / index_dir.VECTORS)
        del vectors
        raw.unlink()
        return spec

    def _manifest(self, metas: dict[str, str], passages: int, dim: int, spec: str, fingerprint: str,
                  seconds: float) -> dict:
        p = self.progress
        return {
            "format_version": index_dir.FORMAT_VERSION,
            "build_id": self.build_id,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": {"id": self.embedder.model_id, "dim": dim},
            "vector_index": spec,
            "chunking": asdict(self.settings.chunking),
            "limits": asdict(self.settings.limits),
            "pipeline": self.pipeline,
            "max_file_bytes": self.max_file_bytes,
            "counts": {"documents": len(metas), "passages": passages, "skipped": len(self.corpus_report.skipped)},
            "build_seconds": round(seconds, 2),
            "encode_seconds": round(p.seconds.get("encode", 0.0), 2),
            "passages_per_second": round(passages / seconds, 2),
            "work": {
                "files_total": p.files_total, "files_processed": p.files_processed,
                "passages_embedded": p.passages_embedded, "passages_cached": p.passages_cached,
                "forced": self.force, "stage_seconds": {k: round(v, 3) for k, v in p.seconds.items()},
            },
            "corpus": {"root": str(self.corpus), "fingerprint": fingerprint, "files": metas},
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.corpus_report.skipped],
        }


class _Timed:
    def __init__(self, seconds: dict[str, float], name: str) -> None:
        self.seconds, self.name = seconds, name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.seconds[self.name] = self.seconds.get(self.name, 0.0) + time.perf_counter() - self.started
