"""Refusing instead of queueing: the encoder queue's bound (QA_MAX_WAITING, 503 overloaded) and the per-client
rate limit (QA_RATE_LIMIT, 429 rate_limited), both with Retry-After."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from flask import Flask

from service import create_app
from service.api import RateLimiter
from service.batching import DEFAULT_MAX_WAITING, QuestionBatcher
from service.retrieval import Retriever

BOUND = 2
QUESTIONS = ["OpenAI与AWS的协议价值多少？", "微軟的資本支出是多少？", "Who leads Microsoft?"]


class HeldEncoder:
    """The real encoder, holding every batch until `release` is set."""

    def __init__(self, retriever: Retriever) -> None:
        self.retriever, self.entered, self.release = retriever, threading.Event(), threading.Event()

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.entered.set()
        self.release.wait(timeout=60)
        return self.retriever.encode(texts)


def post(app: Flask, question: str):
    return app.test_client().post("/api/ask", json={"question": question})


def test_questions_beyond_the_bound_are_refused_at_once(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    retriever = app.extensions["qa_state"].current.retriever
    encoder = HeldEncoder(retriever)
    batcher = QuestionBatcher(encoder, max_waiting=BOUND)
    monkeypatch.setattr(retriever, "_batcher", batcher)
    with ThreadPoolExecutor(8) as pool:
        leader = pool.submit(post, app, QUESTIONS[0])  # encodes, held
        assert encoder.entered.wait(timeout=30)
        waiting = [pool.submit(post, app, q) for q in QUESTIONS[1:BOUND + 1]]  # fill the queue
        while len(batcher._queue) < BOUND:
            time.sleep(0.005)
        started = time.monotonic()
        extra = [f.result(timeout=10) for f in [pool.submit(post, app, q) for q in QUESTIONS * 2]]
        refused_within = time.monotonic() - started
        assert not leader.done()  # the refusals came while the encoder still held its batch
        encoder.release.set()
        answered = [leader.result(timeout=60)] + [f.result(timeout=60) for f in waiting]
    assert refused_within < 5
    for response in extra:
        assert response.status_code == 503, response.json
        assert response.json["error"]["code"] == "overloaded"
        assert response.headers["Retry-After"] == "1"
        assert response.json["error"]["request_id"] == response.headers["X-Request-Id"]
    assert [r.status_code for r in answered] == [200] * (BOUND + 1)
    assert post(app, QUESTIONS[0]).status_code == 200  # the queue drained: asking works again


def test_a_client_over_the_rate_limit_gets_429_with_retry_after() -> None:
    app = create_app({"LOAD_INDEX": False, "QA_RATE_LIMIT": "2/m", "TESTING": True})
    client = app.test_client()
    first = [client.get("/api/ask?q=OpenAI").status_code for _ in range(2)]
    assert first == [503, 503]  # let through (no index loaded: 503 index_unavailable)
    refused = client.get("/api/ask?q=OpenAI")
    assert refused.status_code == 429 and refused.json["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert client.post("/api/ask", json={"question": "OpenAI"}).status_code == 429  # both methods count
    other = client.get("/api/ask?q=OpenAI", environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert other.status_code == 503  # another client has its own allowance
    assert client.get("/healthz").status_code == 200  # only questions are limited


def test_the_rate_limit_is_off_by_default_and_refills() -> None:
    client = create_app({"LOAD_INDEX": False, "TESTING": True}).test_client()
    assert {client.get("/api/ask?q=x").status_code for _ in range(50)} == {503}
    limiter = RateLimiter("20/s")
    assert [limiter.wait("a") for _ in range(20)] == [0.0] * 20
    assert 0 < limiter.wait("a") <= 0.05
    time.sleep(0.06)
    assert limiter.wait("a") == 0.0


@pytest.mark.parametrize("setting", ["20", "0/s", "20/d", "x/s", "-1/s"])
def test_a_bad_rate_limit_stops_the_start(setting: str) -> None:
    with pytest.raises(ValueError, match="QA_RATE_LIMIT"):
        create_app({"LOAD_INDEX": False, "QA_RATE_LIMIT": setting})


def test_a_bad_queue_bound_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_MAX_WAITING", "lots")
    with pytest.raises(ValueError, match="QA_MAX_WAITING"):
        create_app({"LOAD_INDEX": False})


def test_no_bound_lets_every_question_wait(app: Flask) -> None:
    retriever = app.extensions["qa_state"].current.retriever
    encoder = HeldEncoder(retriever)
    batcher = QuestionBatcher(encoder, max_waiting=0)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(batcher.embed, q) for q in QUESTIONS * 2]
        while len(batcher._queue) < 5:
            time.sleep(0.005)
        encoder.release.set()
        assert len([f.result(timeout=60) for f in futures]) == 6


def test_a_soak_over_the_default_bound_refuses_the_excess_and_nothing_fails(seed_index: Path, tmp_path: Path) -> None:
    """benchmarks/soak.py smoke run: 12 clients for 4 s against one real gunicorn worker at the default bound."""
    from benchmarks.soak import seed_questions, soak

    run = soak(seed_index, seed_questions(), 12, 4, tmp_path / "gunicorn.log", str(DEFAULT_MAX_WAITING))
    assert run["answered"] > 0 and run["refused"] > 0 and run["errors"] == 0
    assert run["answered"] + run["refused"] == run["requests"]
    assert run["deepest_queue"] <= DEFAULT_MAX_WAITING  # sampled from /metrics while the load ran
