"""The dense side: a FAISS inner-product index over L2-normalized passage vectors, type chosen by size; a
Flat one searched through int8 codes first (ScreenedFlat)."""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from stores.layout import moves

# Exact search while it costs well under the question's encode (9–10 ms on ONNX Runtime). Measured here (2 cores,
# 384-d, one query): 20k vectors 2.2 ms (make bench), 50k 5.8 ms, 100k 15 ms, 200k 42 ms, 1M 180–320 ms; past
# 50k the IVF below is faster (100k: recall@10 0.98 in 1.8 ms).
FLAT_MAX_VECTORS = 50_000
# Past that: inverted lists (about 4·√n, a power of two) of 8-bit scalar-quantized vectors, 384 B a vector
# instead of 1536. make bench at 1M (benchmarks/RESULTS.md: real e5 passages plus noise, real questions, k=100,
# one query, tie-aware recall@10): IVF4096,SQ8 380 MB, recall 0.977 at nprobe 64 (4.6 ms), 0.986 at 128
# (7.8 ms), 0.988 at 256 (13.5 ms). Flat: 1465 MB, 141 ms. IVF4096,PQ64x4fs,Refine(SQ8): 413 MB, faster
# (3.3 ms) but 0.978 at best. HNSW32,SQ8: 626 MB, 0.52 at efSearch 256 on this synthetic set.
ANN_SPEC = "IVF{nlist},SQ8"
NPROBE = 128
TRAIN_SAMPLE = 100_000  # k-means on a seeded sample of the (memory-mapped) vectors: 1M built in 225 s
# A served Flat index is searched in two passes (ScreenedFlat): int8 codes pick SCREEN_WIDTH × k candidates, their
# fp32 vectors give the exact scores. Datasets index (19,888 vectors, real questions, k = 100, one CPU): 1.5 →
# 0.53 ms a search; top 10 the same as Flat's for 600 of 600 questions, top 100 overlap 0.9999.
SCREEN_WIDTH = 2


def ivf_nlist(count: int) -> int:
    return 2 ** max(8, round(math.log2(4 * math.sqrt(max(count, 1)))))


def index_spec(count: int) -> str:
    return "Flat" if count <= FLAT_MAX_VECTORS else ANN_SPEC.format(nlist=ivf_nlist(count))


def build_vector_index(vectors: np.ndarray, spec: str, add_batch: int = 65536, seed: int = 0) -> faiss.Index:
    """`vectors` may be a memory map: training reads a sample of it, adding reads it batch by batch."""
    index = faiss.index_factory(vectors.shape[1], spec, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        index.train(training_sample(vectors, TRAIN_SAMPLE, seed))
    for first in range(0, len(vectors), add_batch):
        index.add(np.ascontiguousarray(vectors[first : first + add_batch], dtype=np.float32))
    set_search_parameters(index)
    return index


def updated_vector_index(previous: faiss.Index, live: np.ndarray, layout: np.ndarray, added: np.ndarray,
                         spec: str) -> tuple[faiss.Index, np.ndarray]:
    """The previous build's index with stores/layout.py's `layout` applied (`live`: which of its vectors stay;
    `added`: the new vectors, pool ids after them), and the float64 sum of the vectors removed from it. Inverted
    lists keep their training, and so their vectors' codes, while the spec stays and anything stays; otherwise
    (Flat, a new spec, nothing kept) the index is built anew from the vectors it held (SQ8's decoded) and the new."""
    ivf = faiss.try_extract_index_ivf(previous)
    if ivf is None or spec != _spec_of(ivf) or not live.any():
        held = _held_vectors(previous, ivf)
        removed = held[~live].sum(axis=0, dtype=np.float64)
        return build_vector_index(np.concatenate([held, added])[layout], spec), removed
    gone = np.flatnonzero(~live)
    ivf.make_direct_map(True)
    removed = previous.reconstruct_batch(gone).sum(axis=0, dtype=np.float64) if len(gone) else np.zeros(previous.d)
    ivf.set_direct_map_type(faiss.DirectMap.NoMap)  # FAISS removes ids only without one
    previous.remove_ids(gone)
    _relabel(ivf, [(final, pool) for final, pool in moves(layout) if pool < len(live)])
    new = np.flatnonzero(layout >= len(live))
    if len(new):
        previous.add_with_ids(np.ascontiguousarray(added[layout[new] - len(live)], dtype=np.float32), new)
    set_search_parameters(previous)
    return previous, removed


def _spec_of(ivf: faiss.IndexIVF) -> str:
    return ANN_SPEC.format(nlist=ivf.nlist)


def _held_vectors(index: faiss.Index, ivf: faiss.IndexIVF | None) -> np.ndarray:
    if ivf is not None:
        ivf.make_direct_map(True)
    return index.reconstruct_n(0, index.ntotal) if index.ntotal else np.empty((0, index.d), dtype=np.float32)


def _relabel(ivf: faiss.IndexIVF, relabelled: list[tuple[int, int]]) -> None:
    """Give vectors new ids in place, (new id, old id) pairs: their codes and lists stay as trained."""
    if not relabelled:
        return
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # ids are not contiguous here (removals left holes)
    for new_id, old_id in relabelled:
        located = ivf.direct_map.get(old_id)
        lists, offset = located >> 32, located & 0xFFFFFFFF
        ivf.invlists.update_entry(lists, offset, new_id, ivf.invlists.get_single_code(lists, offset))
    ivf.set_direct_map_type(faiss.DirectMap.NoMap)


def training_sample(vectors: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    if len(vectors) <= size:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    rows = np.sort(np.random.default_rng(seed).choice(len(vectors), size, replace=False))
    return np.ascontiguousarray(vectors[rows], dtype=np.float32)


def set_search_parameters(index: faiss.Index, nprobe: int = NPROBE) -> None:
    """The measured operating point; a no-op for exact Flat."""
    if faiss.try_extract_index_ivf(index) is not None:
        faiss.ParameterSpace().set_index_parameter(index, "nprobe", nprobe)


def save_vector_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def read_vector_index(path: Path) -> faiss.Index:
    """The index as saved, to be updated (updated_vector_index)."""
    return faiss.read_index(str(path))


def load_vector_index(path: Path, screened: bool = True) -> faiss.Index | ScreenedFlat:
    """The index, to be searched one question at a time (`search`); a Flat one screened through int8 codes unless
    `screened` is False (FAISS's own search: the benchmark's floor)."""
    index = faiss.read_index(str(path))
    set_search_parameters(index)
    if (ivf := faiss.try_extract_index_ivf(index)) is not None:
        ivf.make_direct_map()  # stored_vectors reads hits' vectors by id: 8 bytes a vector
    return ScreenedFlat.of(index) if screened and isinstance(index, faiss.IndexFlat) else index


@dataclass(frozen=True)
class ScreenedFlat:
    """Exact search, mostly: a Flat index's scan reads 1536 bytes a vector; its int8 codes (each vector × one
    scale for all, rounded) read 384, and FAISS scores them in int8 SIMD. A true top-k vector is lost only if its
    int8 error exceeds the gap between its score and the screen's (SCREEN_WIDTH × k)-th: rare (see SCREEN_WIDTH),
    not impossible."""
    exact: faiss.IndexFlat
    codes: faiss.IndexScalarQuantizer
    vectors: np.ndarray  # the Flat index's own fp32 storage, no copy

    @classmethod
    def of(cls, exact: faiss.IndexFlat) -> ScreenedFlat:
        vectors = faiss.rev_swig_ptr(exact.get_xb(), exact.ntotal * exact.d).reshape(exact.ntotal, exact.d)
        codes = faiss.IndexScalarQuantizer(exact.d, faiss.ScalarQuantizer.QT_8bit_direct_signed, exact.metric_type)
        codes.add(np.rint(vectors * _int8_scale(vectors)))
        return cls(exact, codes, vectors)

    @property
    def ntotal(self) -> int:
        return self.exact.ntotal

    @property
    def d(self) -> int:
        return self.exact.d

    def reconstruct_n(self, first: int, count: int) -> np.ndarray:
        return self.exact.reconstruct_n(first, count)

    def search(self, queries: np.ndarray, k: int, params: faiss.SearchParameters | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        scaled = np.rint(queries * _int8_scale(queries, axis=1))
        _, screened = self.codes.search(scaled, min(k * SCREEN_WIDTH, self.ntotal), params=params)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for row, (query, candidates) in enumerate(zip(queries, screened)):
            candidates = candidates[candidates >= 0]
            exact = self.vectors[candidates] @ query
            best = np.lexsort((-candidates, -exact))[:k]  # ties: the higher id first, as Flat's heap
            scores[row, : len(best)], ids[row, : len(best)] = exact[best], candidates[best]
        return scores, ids


def _int8_scale(vectors: np.ndarray, axis: int | None = None) -> np.ndarray:
    """What brings the largest component to ±127, the int8 codes' range."""
    return 127 / np.maximum(np.abs(vectors).max(axis=axis, keepdims=axis is not None), 1e-12)


def stored_vectors(index: faiss.Index | ScreenedFlat, ids: list[int]) -> np.ndarray:
    """The vectors of passages `ids` as the index holds them (8-bit quantized ones decoded)."""
    if isinstance(index, ScreenedFlat):
        return index.vectors[np.asarray(ids, dtype=np.int64)]
    return index.reconstruct_batch(np.asarray(ids, dtype=np.int64))


def search(index: faiss.Index | ScreenedFlat, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Top-k by inner product; `allowed` (a boolean per vector) filters inside the search, before the top k."""
    _one_openmp_thread()
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if allowed is None:
        return index.search(queries, min(k, index.ntotal))
    bits = np.packbits(allowed, bitorder="little")
    selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
    ivf = faiss.try_extract_index_ivf(index) if isinstance(index, faiss.Index) else None
    params = faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nprobe) if ivf is not None else faiss.SearchParameters(sel=selector)
    return index.search(queries, min(k, index.ntotal), params=params)


_searching_thread = threading.local()


def _one_openmp_thread() -> None:
    """A question is searched on the calling thread alone. With FAISS's OpenMP threads, searching 20k vectors Flat
    took 2.9 ms and 5.8 ms of CPU (the second thread waits, against the question encoder on 2 cores) instead of
    1.5 ms and 1.5 ms; IVF at 1M searches one query on one thread either way. libgomp keeps the thread count per
    calling thread, so each thread that searches (a server's pool threads) sets its own; builds train and add
    on threads that never searched, with every core."""
    if not getattr(_searching_thread, "single", False):
        faiss.omp_set_num_threads(1)
        _searching_thread.single = True
