"""The floor: what the raw parts cost with nothing of ours around them, measured in the same run.

The encoder is indexer.embedding's thin wrapper, which for the torch backend is exactly one
sentence-transformers `encode(texts, prompt_name=…, normalize_embeddings=True)` call, and for onnx-int8 the
ONNX Runtime session with tokenizer and pooling (indexer/onnx_backend.py). Measured:
- `encode` of the questions one at a time (the query path's floor) and in batches
  (the throughput floor for concurrent clients: c questions outstanding can at best be encoded c at a time);
  and, for an encoder whose calls run side by side (the service's lanes, service/batching.py), 8 questions
  at a time as that many calls at once, the stricter floor for 8 clients (benchmarks/__main__.py also runs it
  on the service's own encoder, which packs each call's questions into one row: indexer/packing.py);
- `encode` of passages in batches of 32 (the build's floor);
- FAISS search alone for one question vector, as many candidates as the service asks for.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import faiss
import numpy as np

from indexer.embedding import Encoder
from service.retrieval import CANDIDATES

PASSAGE_BATCH = 32
SIDE_BY_SIDE = 8  # questions outstanding, as with 8 clients


def milliseconds_each(run: Callable[[object], object], items: Sequence) -> list[float]:
    times = []
    for item in items:
        started = time.perf_counter()
        run(item)
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(times_ms: list[float]) -> dict[str, float]:
    ordered = sorted(times_ms)
    return {
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "mean_ms": statistics.fmean(ordered),
    }


def question_floor(encoder: Encoder, questions: list[str], batch_sizes: Sequence[int] = (4, 8, 16)) -> dict:
    encoder.queries(questions[:8])  # first calls allocate; measure warm
    single = summary(milliseconds_each(lambda q: encoder.queries([q]), questions))
    result = {"single": single, "per_second": {1: 1000 / single["mean_ms"]}}
    for size in batch_sizes:
        result["per_second"][size] = batches_per_second(encoder, questions, size)
    if encoder.parallel_calls > 1:
        result["side_by_side"] = {"calls": encoder.parallel_calls, "outstanding": SIDE_BY_SIDE,
                                  "per_second": side_by_side_per_second(encoder, questions)}
    return result


def single_p50_ms(encoder: Encoder, questions: list[str]) -> float:
    """The p50 ms of encoding `questions` one at a time (warm)."""
    encoder.queries(questions[:8])
    return summary(milliseconds_each(lambda q: encoder.queries([q]), questions))["p50_ms"]


def batches_per_second(encoder: Encoder, questions: list[str], size: int) -> float:
    """Questions/s encoding `questions` in consecutive batches of `size` (a trailing partial batch left out)."""
    batches = [questions[i : i + size] for i in range(0, len(questions) - size + 1, size)]
    seconds = sum(milliseconds_each(lambda b: encoder.queries(b, size), batches)) / 1000
    return len(batches) * size / seconds


def side_by_side_per_second(encoder: Encoder, questions: list[str], outstanding: int = SIDE_BY_SIDE) -> float:
    """Questions/s when each `outstanding` questions are split over `parallel_calls` encodes running at once."""
    calls = encoder.parallel_calls
    size = -(-outstanding // calls)
    groups = [questions[i : i + outstanding] for i in range(0, len(questions) - outstanding + 1, outstanding)]
    with ThreadPoolExecutor(calls) as pool:
        started = time.perf_counter()
        for group in groups:
            list(pool.map(lambda part: encoder.queries(part, size), [group[i : i + size] for i in range(0, outstanding, size)]))
        seconds = time.perf_counter() - started
    return len(groups) * outstanding / seconds


def passage_floor(encoder: Encoder, passages: list[str]) -> dict:
    encoder.passages(passages[:PASSAGE_BATCH])
    started = time.perf_counter()
    encoder.passages(passages, PASSAGE_BATCH)
    seconds = time.perf_counter() - started
    return {"passages": len(passages), "seconds": seconds, "per_second": len(passages) / seconds}


def search_floor(index: faiss.Index, vectors: np.ndarray) -> dict:
    queries = [np.ascontiguousarray(v[None, :], dtype=np.float32) for v in vectors]
    k = min(CANDIDATES, index.ntotal)
    faiss.omp_set_num_threads(1)  # this thread searches as the service's do (stores/faiss_index.py): the faster way
    index.search(queries[0], k)
    return {"vectors": index.ntotal, "k": k, **summary(milliseconds_each(lambda q: index.search(q, k), queries))}
