"""Packing short texts into one row (indexer/packing.py): the same vectors as padded batches, for less work."""
from __future__ import annotations

import numpy as np
import pytest

from indexer import packing
from indexer.embedding import DEFAULT_MODEL, Encoder, load_embedder
from indexer.onnx_backend import OnnxEmbedder, load_onnx_embedder
from tests.test_onnx_backend import seed_questions


@pytest.fixture(scope="module")
def packed() -> OnnxEmbedder:
    return load_onnx_embedder(DEFAULT_MODEL, "e5", "onnx", threads=2, side_by_side=True, packed=True)


@pytest.fixture(scope="module")
def padded() -> Encoder:
    return load_embedder(None, "onnx")


@pytest.fixture
def packed_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many texts each packed row the encoders make holds (packed vectors equal padded ones, so only this
    tells whether a batch was packed)."""
    rows: list[int] = []
    real = packing.packed_feeds

    def noting(ids: np.ndarray, mask: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        rows.append(len(ids))
        return real(ids, mask)

    monkeypatch.setattr(packing, "packed_feeds", noting)
    return rows


def test_a_packed_row_restarts_positions_and_lets_each_text_see_only_itself():
    ids = np.array([[5, 6, 7], [8, 9, 1]])  # right-padded: the second text has two tokens
    feeds, lengths = packing.packed_feeds(ids, np.array([[1, 1, 1], [1, 1, 0]]))
    assert lengths.tolist() == [3, 2]
    assert feeds["input_ids"].tolist() == [[5, 6, 7, 8, 9]]
    assert feeds[packing.POSITIONS].tolist() == [[0, 1, 2, 0, 1]]
    assert feeds[packing.TOKEN_MASK][0].tolist() == [[1, 1, 1, 0, 0]] * 3 + [[0, 0, 0, 1, 1]] * 2


def test_packed_batches_give_the_vectors_of_padded_ones(packed, padded, packed_rows):
    questions = [q["question"] for q in seed_questions()][:24]
    assert packed.packed
    for size in (2, 3, 8):
        np.testing.assert_allclose(packed.queries(questions, size), padded.queries(questions, size), atol=1e-5)
    assert packed_rows == [2] * 12 + [3] * 8 + [8] * 3  # every batch was one packed row


def test_a_batch_of_more_than_packed_tokens_is_padded_with_the_same_vectors(packed, padded, packed_rows):
    passages = ["微软自研的AI芯片" * 40, "How much will OpenAI spend on servers by 2030?"]
    assert sum(packed.token_counts(passages)) > packing.PACKED_TOKENS
    np.testing.assert_allclose(packed.passages(passages, 2), padded.passages(passages, 2), atol=1e-5)
    assert packed_rows == []


def test_a_backend_without_a_packing_graph_is_not_packed(padded):
    """int8's QEmbedLayerNormalization takes no position ids, so the export writes no packing graph for it: its
    encoder pads, and says so."""
    int8 = load_onnx_embedder(DEFAULT_MODEL, "e5", "onnx-int8", packed=True)
    assert not int8.packed
    vectors = int8.passages(["微软自研的AI芯片", "OpenAI's servers"], 2)
    assert (vectors * padded.passages(["微软自研的AI芯片", "OpenAI's servers"], 2)).sum(axis=1).min() > 0.99


def test_only_a_graph_of_fused_attention_fed_no_computed_positions_is_packed():
    from onnx import helper

    def model(*embedding_inputs: str, attention: str = "Attention") -> object:
        nodes = [helper.make_node("EmbedLayerNormalization", list(embedding_inputs), ["x", "mask_index"]),
                 helper.make_node(attention, ["x", "w", "b", "mask_index"], ["y"])]
        return helper.make_model(helper.make_graph(nodes, "g", [], []))

    inputs = ("ids", "", "w", "p", "", "g", "b", "mask")
    packed = packing.packing_graph(model(*inputs))
    assert packed is not None and packed.graph.node[1].input[3] == packing.TOKEN_MASK
    assert packed.graph.node[0].input[8] == packing.POSITIONS
    assert packing.packing_graph(model(*inputs, "computed_positions")) is None
    assert packing.packing_graph(model(*inputs, attention="Softmax")) is None
