"""The dense index alone at up to 1M vectors: exact Flat against compressed ANN indexes (FAISS factory specs).

Method:
- Base: real passage embeddings (multilingual-e5-small, 384-d, L2-normalized) read back from existing index
  builds (`--index DIR`: `DIR/current/vectors.faiss`, a Flat index).
- Expansion to `--total` vectors: each synthetic vector is a randomly chosen real vector plus isotropic Gaussian
  noise, re-normalized. Noise of σ per dimension gives a copy whose cosine to its source is about
  1/√(1 + σ²·d). σ is set so that cosine equals the median nearest-neighbour cosine among the real vectors
  (measured on the base, printed): a copy is then as close to its source as real passages are to their nearest
  real neighbour, not a near-duplicate (cosine ≈ 1 would make every ANN look perfect), and the real vectors'
  shape (e5's narrow cone, its topic clusters) is kept at the scale that matters for top-10 search.
- Queries: real question embeddings (`query: ` prompt, script-folded as the service does) of XQuAD zh/en and
  DRCD questions, or whatever the caller passes to `run`.
- Ground truth: exact top-10 by inner product (IndexFlatIP, batched). Recall@10 = the share of the ANN's top 10
  whose exact score reaches the exact 10th-best score (less TIE): the noisy copies make near-ties at rank 10
  common, and exact search itself, one query at a time, swaps 2% of them against batched exact search.
- Each spec is built with the indexer's own `build_vector_index` (seeded training sample, batched add);
  memory is the size of the serialized index; latency is one query at a time (the service searches one
  question at a time) asking for `search_k` results (the service's 100 candidates), p50/p99 over the queries.
  Each search parameter setting (efSearch / nprobe / k_factor_rf, via faiss.ParameterSpace) is one row.
- Caveat: isotropic noise spreads each copy over all 384 dimensions, so the synthetic set is harder for ANN
  than real text (at 1M, ~190 copies per real vector); HNSW suffers most (recall 0.97 at 100k, 0.58 at 1M).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from stores.faiss_index import build_vector_index, ivf_nlist  # noqa: E402

EVAL_CACHES = ("drcd-dev", "cmrc-trial", "xquad-zh", "xquad-en")
DEFAULT_INDEXES = [ROOT / "evals" / ".cache" / f"{name}-160u" for name in EVAL_CACHES]
DATASETS = ROOT.parent / "shared" / "datasets"
QUESTION_FILES = [DATASETS / "xquad" / "xquad.zh.json", DATASETS / "xquad" / "xquad.en.json",
                  DATASETS / "drcd" / "DRCD_dev.json"]
K = 10
TIE = 1e-5  # scores within this of the 10th-best count as ties (float sums differ by ~1e-6)
SEARCH_K = 100  # service/retrieval.py CANDIDATES
FLAT_LATENCY_QUERIES = 50  # exact search at 1M is ~0.3 s a query: fewer queries for its latency


def candidates(total: int) -> list[tuple[str, list[str]]]:
    """(factory spec, search-parameter strings) to measure; every one but Flat fits 1 GB at 1M vectors."""
    nlist = ivf_nlist(total)
    return [
        ("Flat", [""]),
        (f"IVF{nlist},SQ8", [f"nprobe={p}" for p in (32, 64, 128, 256)]),
        (f"IVF{nlist},PQ64x4fs,Refine(SQ8)",
         [f"nprobe={p},k_factor_rf={f}" for p, f in ((64, 8), (128, 16), (128, 32), (128, 64))]),
        ("HNSW32,SQ8", [f"efSearch={e}" for e in (64, 128, 256)]),
    ]


def load_base(index_dirs: list[Path]) -> np.ndarray:
    parts = []
    for root in index_dirs:
        index = faiss.read_index(str(root / "current" / "vectors.faiss"))
        parts.append(index.reconstruct_n(0, index.ntotal))
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def nearest_neighbour_cosine(base: np.ndarray, sample: int = 2000, seed: int = 0) -> float:
    """Median cosine of a real vector to its nearest other real vector (exact duplicates skipped)."""
    rows = np.random.default_rng(seed).choice(len(base), min(sample, len(base)), replace=False)
    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    scores, _ = flat.search(base[rows], 5)
    others = [next((s for s in row[1:] if s < 0.9999), row[-1]) for row in scores]
    return float(np.median(others))


def noise_sigma(target_cosine: float, dim: int) -> float:
    return float(np.sqrt((1.0 / target_cosine**2 - 1.0) / dim))


def expand(base: np.ndarray, total: int, sigma: float, seed: int = 0, chunk: int = 100_000) -> np.ndarray:
    """The real vectors first, then noisy normalized copies of random real ones, generated in float32 chunks."""
    rng = np.random.default_rng(seed)
    out = np.empty((max(total, len(base)), base.shape[1]), dtype=np.float32)
    out[: len(base)] = base
    for first in range(len(base), total, chunk):
        count = min(chunk, total - first)
        out[first : first + count] = noisy_copies(base, count, sigma, rng)
    return out[:total]


def noisy_copies(base: np.ndarray, count: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """`count` random rows of `base`, each plus Gaussian noise of `sigma` per dimension, re-normalized."""
    block = base[rng.integers(0, len(base), count)]
    block += rng.standard_normal(block.shape, dtype=np.float32) * np.float32(sigma)
    block /= np.linalg.norm(block, axis=1, keepdims=True)
    return block


def load_questions(count: int = 200, seed: int = 0) -> list[str]:
    """`count` questions spread over XQuAD zh, XQuAD en and DRCD (traditional Chinese), sampled with `seed`."""
    rng = random.Random(seed)
    chosen: list[str] = []
    for i, path in enumerate(QUESTION_FILES):
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        questions = [qa["question"] for article in data for para in article["paragraphs"] for qa in para["qas"]]
        share = count // len(QUESTION_FILES) + (1 if i < count % len(QUESTION_FILES) else 0)
        chosen += rng.sample(questions, share)
    return chosen


def encode_questions(questions: list[str]) -> np.ndarray:
    from indexer.embedding import load_embedder
    from text.normalize import fold_script

    return load_embedder().queries([fold_script(q) for q in questions])


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = K) -> tuple[faiss.Index, Truth, float]:
    started = time.perf_counter()
    flat = build_vector_index(vectors, "Flat")
    build_s = time.perf_counter() - started
    return flat, Truth(vectors, queries, flat.search(queries, k)[0][:, k - 1]), build_s


def latencies_ms(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-query wall time (ms) searching one query at a time, and the top-K ids of each."""
    index.search(queries[:3], k)  # warm-up
    times, ids = [], []
    for query in queries:
        started = time.perf_counter()
        _, found = index.search(query[None, :], k)
        times.append((time.perf_counter() - started) * 1000)
        ids.append(found[0, :K])
    return np.array(times), np.array(ids)


@dataclass(frozen=True)
class Truth:
    vectors: np.ndarray
    queries: np.ndarray
    kth: np.ndarray  # each query's exact 10th-best score

    def recall(self, found: np.ndarray) -> float:
        """Recall@10 with ties: found ids whose exact score reaches the 10th-best exact score (less TIE)."""
        shares = [np.count_nonzero(self.vectors[ids[ids >= 0]] @ query >= kth - TIE) / K
                  for ids, query, kth in zip(found, self.queries, self.kth)]
        return float(np.mean(shares))


def measure(spec: str, index: faiss.Index, params: str, queries: np.ndarray, truth: Truth,
            build_s: float, memory_mb: float, search_k: int) -> dict:
    if params:
        faiss.ParameterSpace().set_index_parameters(index, params)
    times, found = latencies_ms(index, queries, search_k)
    row = {"spec": spec, "params": params, "build_s": round(build_s, 1), "memory_mb": round(memory_mb, 1),
           "p50_ms": round(float(np.percentile(times, 50)), 2), "p99_ms": round(float(np.percentile(times, 99)), 2),
           "recall_at_10": round(truth.recall(found), 4), "ntotal": int(index.ntotal)}
    print(format_row(row), flush=True)
    return row


def serialized_mb(index: faiss.Index) -> float:
    return faiss.serialize_index(index).nbytes / 2**20


def run(base: np.ndarray, queries: np.ndarray, total: int = 1_000_000, search_k: int = SEARCH_K,
        specs: list[tuple[str, list[str]]] | None = None, seed: int = 0) -> list[dict]:
    """Expand `base` to `total` vectors, then measure every (spec, params) against exact search; one row each."""
    target = nearest_neighbour_cosine(base, seed=seed)
    sigma = noise_sigma(target, base.shape[1])
    vectors = expand(base, total, sigma, seed)
    flat, truth, flat_s = exact_top(vectors, queries)
    copies = vectors[len(base) : len(base) + 2000]
    print(f"{len(base)} real vectors, median nearest-neighbour cosine {target:.3f} -> noise sigma {sigma:.4f}; "
          f"{total} vectors; median nearest-neighbour cosine of 2000 synthetic ones "
          f"{float(np.median(flat.search(copies, 2)[0][:, 1])):.3f}", flush=True)
    print(format_header(), flush=True)
    rows = [measure("Flat", flat, "", queries[:FLAT_LATENCY_QUERIES], truth, flat_s, serialized_mb(flat), search_k)]
    del flat
    for spec, settings in specs or candidates(total):
        if spec == "Flat":
            continue
        started = time.perf_counter()
        index = build_vector_index(vectors, spec, seed=seed)
        build_s = time.perf_counter() - started
        memory_mb = serialized_mb(index)
        rows += [measure(spec, index, params, queries, truth, build_s, memory_mb, search_k) for params in settings]
        del index
    return rows


def format_header() -> str:
    return f"{'spec':36} {'params':22} {'build s':>8} {'MB':>7} {'p50 ms':>7} {'p99 ms':>7} {'R@10':>6}"


def format_row(row: dict) -> str:
    return (f"{row['spec']:36} {row['params']:22} {row['build_s']:8.1f} {row['memory_mb']:7.0f} "
            f"{row['p50_ms']:7.2f} {row['p99_ms']:7.2f} {row['recall_at_10']:6.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, nargs="+", default=DEFAULT_INDEXES, help="index roots (Flat vectors)")
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--search-k", type=int, default=SEARCH_K)
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    started = time.perf_counter()
    queries = encode_questions(load_questions(args.queries))
    rows = run(load_base(args.index), queries, args.total, args.search_k)
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
