"""The keyword side (stores/bm25.py): the top k picks what a full partition picks, at any size; common words are left out of a search."""
from __future__ import annotations

import bm25s
import numpy as np
import pytest
from bm25s.tokenization import Tokenized

from stores.bm25 import KeywordIndex, VocabularyBuilder, load_keyword_index, save_keyword_index, top_positive


def reference(scores: np.ndarray, k: int) -> list[float]:
    positive = scores[scores > 0]
    return sorted(positive.tolist(), reverse=True)[:k]


@pytest.mark.parametrize("size", [0, 5, 1023, 1024, 5000, 200_003])
@pytest.mark.parametrize("zeros", [0.0, 0.6, 0.99995, 1.0])
@pytest.mark.parametrize("k", [1, 100, 3000])
def test_top_positive_equals_a_full_partition(size: int, zeros: float, k: int) -> None:
    rng = np.random.default_rng(size + k)
    scores = rng.gamma(2.0, 1.0, size).astype(np.float32)
    scores[rng.random(size) < zeros] = 0
    scores[rng.random(size) < 0.05] = 1.5  # ties, also at the k-th place
    top = top_positive(scores, k)
    assert len(set(top.tolist())) == len(top)
    assert sorted(scores[top].tolist(), reverse=True) == reference(scores, k)


def test_top_positive_of_nothing() -> None:
    assert top_positive(np.zeros(4096, dtype=np.float32), 10).size == 0
    assert top_positive(np.ones(10, dtype=np.float32), 0).size == 0


def keyword_index(passages: list[list[str]]) -> KeywordIndex:
    builder = VocabularyBuilder()
    for tokens in passages:
        builder.add(tokens)
    return KeywordIndex(builder.build())


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # bm25s's own loop, over the empty passage
@pytest.mark.parametrize("passages", [
    [["的", "长城"], [], ["长城", "长城", "长城", "黄河"], ["黄河", "长江"] * 40],
    [[]],  # no word at all: the empty token stands in
    [[f"w{(7 * i + j * j) % 97}" for j in range(1 + i % 23)] for i in range(500)],  # frequent ties in df and tf
])
def test_the_array_build_equals_bm25s_own_bit_for_bit(passages: list[list[str]]) -> None:
    built = keyword_index(passages).retriever
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(token, len(vocab)) for token in tokens] for tokens in passages]
    reference = bm25s.BM25()
    reference.index(Tokenized(ids=ids, vocab=vocab or {"": 0}), show_progress=False)
    assert built.vocab_dict == reference.vocab_dict
    assert built.scores["num_docs"] == reference.scores["num_docs"]
    for part in ("data", "indices", "indptr"):
        assert built.scores[part].dtype == reference.scores[part].dtype
        assert np.array_equal(built.scores[part], reference.scores[part])


def test_words_in_most_passages_are_left_out_when_others_remain() -> None:
    index = keyword_index([["的", "长城"], ["的", "黄河"], ["的", "长江"], ["黄河", "长江"]])  # 的: 3 of 4
    assert index.searched_words(["长城", "的", "故宫"]) == ["长城"]
    assert index.searched_words(["的"]) == ["的"]  # a question of common words only keeps them
    ids, scores = index.top(["的", "长城"], 10)
    assert ids.tolist() == [0] and scores[0] > 0  # only the passage with the rare word, not every one with 的


def test_top_scores_as_bm25s_does_and_respects_allowed() -> None:
    index = keyword_index([["黄河", "长江"], ["黄河"], ["长江", "长江", "湖"], ["湖"]])
    full = index.retriever.get_scores(["黄河", "湖"])
    ids, scores = index.top(["黄河", "湖"], 10)
    assert dict(zip(ids.tolist(), scores.tolist())) == {i: s for i, s in enumerate(full.tolist()) if s > 0}
    ids, _ = index.top(["黄河", "湖"], 10, allowed=np.array([False, True, True, False]))
    assert sorted(ids.tolist()) == [1, 2]
    assert index.top(["不在"], 10)[0].size == 0


def test_a_loaded_index_stays_memory_mapped_but_is_read_as_plain_arrays(tmp_path) -> None:
    """np.memmap indexes through a Python __getitem__ (µs a call, ~200 calls a question); a view of it does not."""
    built = keyword_index([["黄河", "长江"], ["黄河"], ["湖"]])
    save_keyword_index(built.retriever, tmp_path)
    loaded = load_keyword_index(tmp_path)
    for part in ("data", "indices", "indptr"):
        array = loaded.retriever.scores[part]
        assert type(array) is np.ndarray and isinstance(array.base, np.memmap)
    assert loaded.top(["黄河"], 10)[0].tolist() == built.top(["黄河"], 10)[0].tolist()
