"""The keyword side's top-k (stores/bm25.py top_positive) picks what a full partition picks, at any size."""
from __future__ import annotations

import numpy as np
import pytest

from stores.bm25 import top_positive


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
