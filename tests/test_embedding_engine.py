"""The build's passage engine (indexer/embedding.py): passages sorted by tokens within a window, keys kept."""
from __future__ import annotations

import numpy as np

from indexer.embedding import Encoder, InProcessEngine, load_embedder
from stores.contract import Scope

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


def test_a_build_of_a_few_passages_loads_the_onnx_twin_and_stores_torch_equal_vectors(embedder: Encoder,
                                                                                          tmp_path) -> None:
    from indexer.build import build_index
    from indexer.embedding import LazyEncoder
    from indexer.onnx_backend import OnnxEmbedder
    from stores.embedded import EmbeddedLocation

    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "deal.txt").write_text("\n\n".join(TEXTS[:6]), encoding="utf-8")
    lazy = LazyEncoder(backend="torch")
    build_index(tmp_path / "corpus", tmp_path / "index", lazy, progress=False)
    assert isinstance(lazy.load(), OnnxEmbedder)
    assert lazy.identity == LazyEncoder(backend="torch").identity  # the cache keys a torch build looks up
    store = EmbeddedLocation(tmp_path / "index").open(lazy.model_id, embedder.dim)
    candidates = store.dense(embedder.queries([TEXTS[3]])[0], 100, Scope())
    stored = store.passages([int(i) for i in candidates.ids])
    assert len(stored) == store.passage_count >= 2
    for passage in stored.values():  # every stored vector is torch's vector of its text
        found = store.dense(embedder.passages([passage.folded])[0], 1, Scope())
        assert found.ids[0] == passage.id and found.scores[0] > 0.9999


def test_a_lazy_encoder_loads_torch_when_many_passages_or_no_count_are_expected() -> None:
    from indexer.embedding import Embedder, LazyEncoder

    many = LazyEncoder(backend="torch")
    many.expect(LazyEncoder.FEW_PASSAGES + 1)
    assert isinstance(many.load(), Embedder)
    assert isinstance(LazyEncoder(backend="torch").load(), Embedder)
