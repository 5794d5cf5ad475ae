"""The build's passage engine (indexer/embedding.py): passages sorted by tokens within a window, keys kept."""
from __future__ import annotations

import numpy as np

from indexer.embedding import Encoder, InProcessEngine, load_embedder

TEXTS = [("微软与OpenAI签署协议。" * n) if n % 2 else ("Microsoft signed a deal with OpenAI. " * n) for n in range(1, 41)]


def test_every_passage_comes_back_once_with_its_own_vector(embedder: Encoder) -> None:
    items = [(f"k{i}".encode(), text) for i, text in enumerate(TEXTS)]
    batches = list(InProcessEngine(embedder, batch=4, window=16).embed(items))
    keys = [key for batch_keys, _ in batches for key in batch_keys]
    assert sorted(keys) == sorted(key for key, _ in items) and len(keys) == len(set(keys))
    vectors = dict(zip(keys, np.concatenate([v for _, v in batches])))
    expected = embedder.passages(TEXTS)
    for i in range(len(TEXTS)):
        np.testing.assert_allclose(vectors[f"k{i}".encode()], expected[i], atol=1e-4)


def test_within_a_window_batches_go_from_fewest_to_most_tokens(embedder: Encoder) -> None:
    items = [(str(i).encode(), text) for i, text in enumerate(reversed(TEXTS))]
    order = [int(k) for keys, _ in InProcessEngine(embedder, batch=4, window=len(TEXTS)).embed(items) for k in keys]
    counts = embedder.token_counts([items[i][1] for i in order])
    assert counts == sorted(counts)
    assert counts[-1] <= 512  # truncated as the model truncates


def test_the_onnx_backend_counts_the_tokens_torch_counts(embedder: Encoder) -> None:
    onnx = load_embedder(None, "onnx")
    long = "数据中心" * 400  # past the 512-token limit: both count what the model reads
    assert onnx.token_counts([*TEXTS, long]) == embedder.token_counts([*TEXTS, long])
