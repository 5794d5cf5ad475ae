"""The whole service at a million passages: `make bench-1m` (`python -m benchmarks --only million --merge`).

1. Corpus: ~1M passages of the datasets' real sentences, recombined (benchmarks/million_corpus.py).
2. Build: the indexer's own `build_index` in a child process, into a fresh index folder and the real store
   (SQLite + BM25 + the FAISS index the indexer chooses for that size). Encoding a million passages would take
   11 hours here, so passages are embedded by `NoiseEngine`: `--real` of them (2,048 by default, drawn at
   random) by the real encoder, sorted by token count as a build does; every other one is a noisy copy of one
   of those, calibrated as benchmarks/ann.py calibrates its 1M vectors (a copy is as close to its source as
   real passages are to their nearest real neighbour). Reported: every stage's seconds, the build's seconds
   without the encode stage (real and synthetic), the child's peak RSS, the index's size on disk.
3. Ask: gunicorn serves it as in production; real questions about the datasets' articles
   (benchmarks/corpus.py), 400 one at a time for p50 / p99 and each phase's mean from /metrics, then 8
   clients for queries/s; the worker's RSS at the end. Aims (issue 15): ask p50 ≤ 30 ms, worker RSS ≤ 6 GB.
4. Rebuild: one document added (made as benchmarks/incremental.py makes it), then changed, then deleted, so the
   corpus ends as it began; each a child process as a user's `python -m indexer build` (the real encoder, loaded
   only for the new passages), against the cold build's process seconds.

    PYTHONPATH=. .venv/bin/python -m benchmarks.million build --corpus C --index I --real N   (the child)
"""
from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from benchmarks import ann, corpus, incremental, indexing, query
from benchmarks.million_corpus import write_corpus
from indexer.embedding import Encoder, InProcessEngine

PASSAGES, QUICK_PASSAGES = 1_000_000, 50_000
REAL = 2048  # passages the real encoder embeds (~90 s); the rest are calibrated copies
COPY_BATCH = 8192
CLIENTS = (1, 8)
P50_AIM_MS, RSS_AIM_MB = 30.0, 6 * 1024


class NoiseEngine:
    """A PassageEngine: `real` randomly chosen items through the real encoder, the others noisy copies of them."""

    def __init__(self, encoder: Encoder, real: int = REAL, seed: int = 0) -> None:
        self.encoder, self.real, self.rng = encoder, real, np.random.default_rng(seed)
        self.sigma, self.target_cosine = 0.0, 0.0

    def embed(self, items: Iterable[tuple[bytes, str]]) -> Iterator[tuple[list[bytes], np.ndarray]]:
        items = list(items)
        chosen = np.zeros(len(items), dtype=bool)
        chosen[self.rng.choice(len(items), min(self.real, len(items)), replace=False)] = True
        real = [item for item, pick in zip(items, chosen) if pick]
        parts = []
        for keys, vectors in InProcessEngine(self.encoder).embed(real):
            parts.append(vectors)
            yield keys, vectors
        base = np.concatenate(parts)
        self.target_cosine = ann.nearest_neighbour_cosine(base)
        self.sigma = ann.noise_sigma(self.target_cosine, base.shape[1])
        rest = (key for (key, _), pick in zip(items, chosen) if not pick)
        while keys := list(itertools.islice(rest, COPY_BATCH)):
            yield keys, ann.noisy_copies(base, len(keys), self.sigma, self.rng)

    def close(self) -> None:
        """Nothing held."""


def build_child(corpus_root: Path, index_root: Path, real: int) -> dict:
    """In the child: a cold build with NoiseEngine; what the parent reports of it."""
    from indexer.build import build_index
    from indexer.embedding import LazyEncoder

    encoder = LazyEncoder()
    engine = NoiseEngine(encoder, real)
    result = build_index(corpus_root, index_root, encoder, progress=False, force=True, engine=engine)
    return {"manifest": {k: result.manifest[k] for k in ("counts", "build_seconds", "encode_seconds", "vector_index", "work")},
            "noise": {"real": real, "target_cosine": engine.target_cosine, "sigma": engine.sigma}}


def run(passages: int = PASSAGES, real: int = REAL) -> dict:
    corpus_root = write_corpus(passages)
    index_root = corpus.CACHE / f"index-million-{passages}"
    shutil.rmtree(index_root, ignore_errors=True)
    report = corpus.CACHE / f"million-{passages}-build.json"
    command = [sys.executable, "-m", "benchmarks.million", "build", "--corpus", str(corpus_root),
               "--index", str(index_root), "--real", str(real), "--out", str(report)]
    wall, peak_rss_mb = indexing.run_child(command, f"building {corpus_root}")
    built = json.loads(report.read_text())
    manifest = built["manifest"]
    served = query.measure(index_root, corpus.questions(), corpus.CACHE / "million-gunicorn.log", CLIENTS)
    served["requests_one_at_a_time"] = query.LATENCY_REQUESTS
    rebuilds = one_document_rebuilds(corpus_root, index_root, wall)
    return {
        "passages_asked_for": passages,
        "corpus_mb": _megabytes(corpus_root),
        **built,
        "build": {"process_seconds": wall, "peak_rss_mb": peak_rss_mb,
                  "without_encode_seconds": manifest["build_seconds"] - manifest["encode_seconds"]},
        "on_disk_mb": _on_disk(index_root),
        "served": served,
        "rebuilds": rebuilds,
        "aims": {"p50_ms": P50_AIM_MS, "worker_rss_mb": RSS_AIM_MB},
    }


def one_document_rebuilds(corpus_root: Path, index_root: Path, cold_process_seconds: float) -> list[dict]:
    """Add a document, change it, delete it: each rebuilt in a child process (benchmarks/incremental.py)."""
    source = incremental.pick_documents(corpus_root)[0]
    added = corpus_root / incremental.ADDED
    steps = [("add one document", lambda: incremental.add_document(corpus_root, source)),
             ("change one document", lambda: incremental.insert_sentence(added)),
             ("delete one document", added.unlink)]
    rows = []
    try:
        for label, change in steps:
            change()
            measured = incremental.rebuild(corpus_root, index_root)
            rows.append({"change": label, **measured,
                         "share_of_cold_process": measured["process_seconds"] / cold_process_seconds})
            print(f"[million] {label}: {measured['process_seconds']:.1f} s", flush=True)
    finally:
        added.unlink(missing_ok=True)
        shutil.rmtree(added.parent, ignore_errors=True)  # the corpus as write_corpus left it
    return rows


def _on_disk(index_root: Path) -> dict[str, float]:
    build = (index_root / "current").resolve()
    parts = {path.name: _megabytes(path) for path in sorted(build.iterdir())}
    return {**parts, "index": sum(parts.values()), "caches": _megabytes(index_root / "cache")}


def _megabytes(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build"])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--real", type=int, default=REAL)
    parser.add_argument("--out", type=Path, required=True, help="where the child writes its JSON report")
    args = parser.parse_args()
    args.out.write_text(json.dumps(build_child(args.corpus, args.index, args.real), indent=1))


if __name__ == "__main__":
    main()
