"""Concurrent questions are encoded together and each still gets its own answer."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from service.batching import SIDE_BY_SIDE_BATCH, QuestionBatcher
from service.retrieval import Retriever


class RecordingEncoder:
    """Encodes with the real model, but holds each batch until `release` and records the batch sizes."""

    def __init__(self, retriever: Retriever) -> None:
        self.retriever, self.sizes = retriever, []
        self.release = threading.Event()

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.sizes.append(len(texts))
        self.release.wait(timeout=30)
        return self.retriever.encode(texts)


@pytest.fixture(scope="module")
def retriever(app) -> Retriever:
    return app.extensions["qa_state"].current.retriever


QUESTIONS = ["OpenAI与AWS的协议价值多少？", "微軟的資本支出是多少？", "Who leads Microsoft?", "什么是推理？",
             "How many gigawatts?", "亚马逊的股价怎么样？", "谁是纳德拉？", "What did AWS sign?"]


def test_questions_queued_behind_a_batch_are_encoded_together(retriever):
    encoder = RecordingEncoder(retriever)
    batcher = QuestionBatcher(encoder, max_waiting=len(QUESTIONS))
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        first = pool.submit(batcher.embed, QUESTIONS[0])
        while not encoder.sizes:  # the first question leads; the rest arrive while it is encoding
            threading.Event().wait(0.005)
        rest = [pool.submit(batcher.embed, q) for q in QUESTIONS[1:]]
        while len(batcher._queue) < len(rest):
            threading.Event().wait(0.005)
        encoder.release.set()
        vectors = [first.result(timeout=60)] + [f.result(timeout=60) for f in rest]
    assert encoder.sizes == [1, len(QUESTIONS) - 1]
    expected = retriever.encode(QUESTIONS)
    np.testing.assert_allclose(np.stack(vectors), expected, atol=1e-4)


def test_with_two_lanes_a_question_arriving_during_a_batch_is_encoded_beside_it_and_batches_stay_short(retriever):
    encoder = RecordingEncoder(retriever)
    batcher = QuestionBatcher(encoder, max_waiting=len(QUESTIONS), lanes=2)
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        first = pool.submit(batcher.embed, QUESTIONS[0])
        while len(encoder.sizes) < 1:
            threading.Event().wait(0.005)
        second = pool.submit(batcher.embed, QUESTIONS[1])  # the second lane takes it at once, not the queue
        while len(encoder.sizes) < 2:
            threading.Event().wait(0.005)
        rest = [pool.submit(batcher.embed, q) for q in QUESTIONS[2:]]  # both lanes busy: these queue
        while len(batcher._queue) < len(rest):
            threading.Event().wait(0.005)
        encoder.release.set()
        vectors = [f.result(timeout=60) for f in [first, second, *rest]]
    assert encoder.sizes[:2] == [1, 1] and encoder.sizes[2:] == [SIDE_BY_SIDE_BATCH] * 3
    np.testing.assert_allclose(np.stack(vectors), retriever.encode(QUESTIONS), atol=1e-4)


def test_an_encoding_error_reaches_every_question_of_its_batch_and_the_next_batch_runs(retriever):
    calls = []

    def failing_once(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        if len(calls) == 1:
            raise RuntimeError("encoder failed")
        return retriever.encode(texts)

    batcher = QuestionBatcher(failing_once)
    with pytest.raises(RuntimeError, match="encoder failed"):
        batcher.embed(QUESTIONS[0])
    np.testing.assert_allclose(batcher.embed(QUESTIONS[1]), retriever.encode(QUESTIONS[1:2])[0], atol=1e-4)


def test_concurrent_asks_get_the_answers_sequential_asks_get(retriever, monkeypatch):
    unbounded = QuestionBatcher(retriever.embedder.queries, max_waiting=0, lanes=retriever.embedder.parallel_calls)
    monkeypatch.setattr(retriever, "_batcher", unbounded)  # none refused
    sequential = [retriever.ask(q, 5) for q in QUESTIONS]
    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(lambda q: retriever.ask(q, 5), QUESTIONS * 3))
    for got, want in zip(concurrent, sequential * 3):
        assert [(h.doc_id, h.start, h.end) for h in got.hits] == [(h.doc_id, h.start, h.end) for h in want.hits]
        assert [h.score for h in got.hits] == pytest.approx([h.score for h in want.hits], abs=1e-3)
