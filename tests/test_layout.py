"""A build that starts from the last snapshot (stores/layout.py and its users): ids stay dense, each passage keeps its
tokens, BM25 scores and vector wherever it moves, and the inverted lists keep their training."""
from __future__ import annotations

import faiss
import numpy as np
import pytest

from stores.bm25 import VocabularyBuilder
from stores.faiss_index import build_vector_index, updated_vector_index
from stores.layout import dense_layout, gather_spans, moves

CASES = [(0, 0, 5), (10, 0, 0), (10, 3, 0), (10, 10, 4), (10, 2, 7), (50, 30, 3), (50, 5, 40), (200, 150, 10)]


@pytest.mark.parametrize(("old", "deleted", "added"), CASES)
def test_the_layout_keeps_ids_dense_and_moves_only_what_it_must(old: int, deleted: int, added: int) -> None:
    rng = np.random.default_rng(old + deleted + added)
    live = np.ones(old, dtype=bool)
    live[rng.choice(old, deleted, replace=False)] = False
    layout = dense_layout(live, added)
    kept = np.flatnonzero(live)
    assert sorted(layout.tolist()) == sorted([*kept.tolist(), *range(old, old + added)])
    staying = kept[kept < len(layout)]
    assert (layout[staying] == staying).all()  # a kept passage whose id still exists keeps it
    occupied = set(kept.tolist()) | set(range(old, old + added))  # pool ids are where the rows are before moving
    for final, pool in moves(layout):
        assert final not in occupied, "a move onto a row still in use"
        occupied.remove(pool)
        occupied.add(final)
    assert occupied == set(range(len(layout)))


def test_spans_are_gathered_in_order() -> None:
    values, lengths = np.arange(10), np.array([3, 0, 2, 5])
    gathered, chosen = gather_spans(values, lengths, np.array([3, 1, 0]))
    assert gathered.tolist() == [5, 6, 7, 8, 9, 0, 1, 2] and chosen.tolist() == [5, 0, 3]


def _passages(rng: np.random.Generator, count: int) -> list[list[str]]:
    return [[f"w{int(w)}" for w in rng.zipf(1.6, rng.integers(0, 12)) if w < 400] for _ in range(count)]


def test_bm25_continued_from_a_saved_index_scores_as_one_built_anew(tmp_path) -> None:
    rng = np.random.default_rng(7)
    first, later = _passages(rng, 300), _passages(rng, 40)
    builder = VocabularyBuilder()
    for tokens in first:
        builder.add(tokens)
    builder.save(tmp_path)
    live = rng.random(len(first)) > 0.3  # about 90 passages deleted: their words leave the vocabulary
    continued = VocabularyBuilder(tmp_path)
    for tokens in later:
        continued.add(tokens)
    layout = dense_layout(live, len(later))
    pool = first + later
    anew = VocabularyBuilder()
    for i in layout:
        anew.add(pool[i])
    new, reference = continued.build(layout), anew.build()
    assert len(new.vocab_dict) < len(continued.vocab)  # the unused words were dropped
    for word in reference.vocab_dict:
        if word:
            np.testing.assert_array_equal(new.get_scores([word]), reference.get_scores([word]), err_msg=word)


def _unit(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, 32)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("spec", ["Flat", "IVF16,SQ8"])
def test_vectors_follow_their_passages_and_lists_keep_their_training(spec: str) -> None:
    rng = np.random.default_rng(3)
    old, added = _unit(rng, 3000), _unit(rng, 120)
    previous = build_vector_index(old, spec)
    held = previous.reconstruct_n(0, len(old)) if spec == "Flat" else _decoded(previous, len(old))
    centroids = _centroids(previous)
    live = rng.random(len(old)) > 0.1
    layout = dense_layout(live, len(added))
    updated, removed = updated_vector_index(previous, live, layout, added, spec)
    assert updated.ntotal == len(layout)
    np.testing.assert_allclose(removed, held[~live].sum(axis=0, dtype=np.float64), atol=1e-4)
    got = updated.reconstruct_n(0, len(layout)) if spec == "Flat" else _decoded(updated, len(layout))
    expected = np.concatenate([held, added])[layout]
    np.testing.assert_allclose(got, expected, atol=1e-6 if spec == "Flat" else 0.05)  # new ones: 8-bit codes
    if spec != "Flat":
        np.testing.assert_array_equal(_centroids(updated), centroids)  # not trained again
        moved_or_kept = layout < len(old)
        np.testing.assert_array_equal(got[moved_or_kept], held[layout[moved_or_kept]])  # codes as they were


def _decoded(index: faiss.Index, count: int) -> np.ndarray:
    faiss.extract_index_ivf(index).make_direct_map(True)
    return index.reconstruct_n(0, count)


def _centroids(index: faiss.Index) -> np.ndarray | None:
    ivf = faiss.try_extract_index_ivf(index)
    return None if ivf is None else ivf.quantizer.reconstruct_n(0, ivf.nlist)
