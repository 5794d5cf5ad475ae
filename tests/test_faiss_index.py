"""The dense index: type chosen by size, the ANN spec's recall against exact search, search parameters kept on load."""
import threading

import faiss
import numpy as np
import pytest

from stores import faiss_index as vectors
from stores.faiss_index import (build_vector_index, index_spec, load_vector_index, save_vector_index, search,
                                stored_vectors)

DIM = 384


def _normalized(count: int, seed: int) -> np.ndarray:
    """Clustered unit vectors: noisy copies of a few hundred centres, like passages on shared topics."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((300, DIM), dtype=np.float32)
    points = centres[rng.integers(0, len(centres), count)] + 0.5 * rng.standard_normal((count, DIM), dtype=np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return _normalized(20_000, 0), _normalized(100, 1)


@pytest.fixture(scope="module")
def ann_index(data) -> faiss.Index:
    """The ANN spec the indexer uses past the Flat threshold, with its list count scaled to the test data."""
    base, _ = data
    return build_vector_index(base, vectors.ANN_SPEC.format(nlist=vectors.ivf_nlist(len(base))))


def test_flat_up_to_the_threshold_then_the_ann_spec():
    assert index_spec(1) == index_spec(vectors.FLAT_MAX_VECTORS) == "Flat"
    spec = index_spec(vectors.FLAT_MAX_VECTORS + 1)
    assert spec != "Flat" and faiss.index_factory(DIM, spec).d == DIM
    assert index_spec(1_000_000) != index_spec(10_000_000)  # the list count grows with the corpus


def test_ann_recall_at_10_against_exact(data, ann_index):
    base, queries = data
    index = ann_index
    exact = build_vector_index(base, "Flat")
    _, found = search(index, queries, 10)
    _, truth = search(exact, queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.9


def test_save_and_load_keep_the_search_parameters(data, ann_index, tmp_path):
    base, queries = data
    before = search(ann_index, queries, 10)
    save_vector_index(ann_index, tmp_path / "vectors.faiss")
    loaded = load_vector_index(tmp_path / "vectors.faiss")
    assert loaded.ntotal == len(base) and faiss.extract_index_ivf(loaded).nprobe == vectors.NPROBE
    after = search(loaded, queries, 10)
    assert np.array_equal(before[1], after[1]) and np.allclose(before[0], after[0])


def test_a_loaded_flat_index_is_screened_through_int8_and_finds_what_flat_finds(data, tmp_path):
    base, queries = data
    exact = build_vector_index(base, "Flat")
    save_vector_index(exact, tmp_path / "vectors.faiss")
    screened = load_vector_index(tmp_path / "vectors.faiss")
    assert isinstance(screened, vectors.ScreenedFlat) and screened.ntotal == len(base)
    assert isinstance(load_vector_index(tmp_path / "vectors.faiss", screened=False), faiss.IndexFlat)  # the floor
    truth_scores, truth = search(exact, queries, 100)
    scores, found = search(screened, queries, 100)
    assert np.array_equal(found[:, :10], truth[:, :10])
    assert np.mean([len(set(f) & set(t)) / 100 for f, t in zip(found, truth)]) >= 0.995
    assert np.allclose(scores[:, :10], truth_scores[:, :10], atol=1e-5)  # exact scores, not the codes'


@pytest.mark.parametrize("spec", ["Flat", "ann"])
def test_a_loaded_index_reads_vectors_by_id(data, ann_index, spec, tmp_path):
    """Hits' vectors, for their mean cosine to the corpus (service/relevance.py): exact from Flat, decoded from
    the ANN spec's 8-bit codes (its inverted lists find them through a direct map made at load)."""
    base, _ = data
    save_vector_index(ann_index if spec == "ann" else build_vector_index(base, "Flat"), tmp_path / "vectors.faiss")
    ids = [19_999, 3, 3, 12_345]
    read = stored_vectors(load_vector_index(tmp_path / "vectors.faiss"), ids)
    assert read.shape == (4, DIM)
    assert np.allclose(read, base[ids], atol=0 if spec == "Flat" else 0.01)


def test_a_screened_search_keeps_to_the_allowed_vectors(data, tmp_path):
    base, queries = data
    save_vector_index(build_vector_index(base, "Flat"), tmp_path / "vectors.faiss")
    screened = load_vector_index(tmp_path / "vectors.faiss")
    allowed = np.zeros(len(base), dtype=bool)
    allowed[::400] = True  # 50 vectors, fewer than k
    scores, found = search(screened, queries[:3], 100, allowed)
    assert (found[:, 50:] == -1).all() and allowed[found[:, :50]].all()
    assert np.array_equal(found, search(build_vector_index(base, "Flat"), queries[:3], 100, allowed)[1])


def test_every_thread_that_searches_uses_one_openmp_thread(data):
    """libgomp keeps the thread count per calling thread: a server's pool threads would search with every core."""
    base, queries = data
    index = build_vector_index(base[:1000], "Flat")
    counts = []

    def search_on_a_new_thread() -> None:
        faiss.omp_set_num_threads(2)  # what a new thread gets from OpenMP's default on a 2-core machine
        search(index, queries[:1], 10)
        counts.append(faiss.omp_get_max_threads())

    worker = threading.Thread(target=search_on_a_new_thread)
    worker.start()
    worker.join()
    assert counts == [1]


def test_loading_sets_the_measured_operating_point(data, ann_index, tmp_path):
    faiss.extract_index_ivf(ann_index).nprobe = 1
    save_vector_index(ann_index, tmp_path / "vectors.faiss")
    faiss.extract_index_ivf(ann_index).nprobe = vectors.NPROBE
    assert faiss.extract_index_ivf(load_vector_index(tmp_path / "vectors.faiss")).nprobe == vectors.NPROBE


def test_training_reads_a_sample_of_a_memory_map(tmp_path, monkeypatch):
    base = _normalized(5_000, 2)
    base.tofile(tmp_path / "vectors.f32")
    mapped = np.memmap(tmp_path / "vectors.f32", dtype=np.float32, mode="r").reshape(-1, DIM)
    monkeypatch.setattr(vectors, "TRAIN_SAMPLE", 2_000)
    index = build_vector_index(mapped, "IVF32,SQ8", add_batch=1_000)
    assert index.ntotal == len(base) and index.is_trained
    assert np.array_equal(vectors.training_sample(mapped, 2_000, 0), vectors.training_sample(base, 2_000, 0))


def test_search_asks_for_no_more_than_there_are():
    index = build_vector_index(_normalized(5, 3), "Flat")
    scores, ids = search(index, _normalized(1, 4), 100)
    assert ids.shape == (1, 5) and sorted(ids[0]) == list(range(5))
