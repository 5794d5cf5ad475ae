"""Micro-batching: questions asked at the same time are encoded together, in one forward pass.

On 2 cores one question costs ~16 ms to encode and a batch of 8 costs ~70 ms (benchmarks/RESULTS.md), so
with 8 concurrent clients batching roughly doubles the questions answered per second. Nothing waits for
a batch to fill: a question arriving while the encoder is idle is encoded at once by its own thread; those
arriving while a batch runs queue up, and the oldest of them encodes all that queued as the next batch
(leader/follower, so a lone client pays no thread hand-off).

The queue is bounded (QA_MAX_WAITING, default 1 per worker; 0: no bound): a question finding it full is
refused at once with `Overloaded` (the API answers 503 with Retry-After) instead of waiting behind a queue
that only grows while clients keep asking faster than the encoder answers.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from service import metrics

MAX_BATCH = 16  # longer batches raise every member's latency more than they add throughput
# 1: at most one question waits while a batch runs, so an answer waits for at most two encodes. 64 clients, one
# worker, 2 cores: answered p99 2.0× one client's (bound 8: 10×, none: 31×); raise it for throughput (8 answers
# ~40 % more per second under overload, each after ~300 ms). benchmarks/RESULTS.md, "Overload".
DEFAULT_MAX_WAITING = 1


class Overloaded(Exception):
    """`waiting` questions already queue for the encoder, the most allowed."""

    def __init__(self, waiting: int) -> None:
        super().__init__(f"{waiting} questions are already waiting for the encoder")
        self.waiting = waiting


def max_waiting_from_env() -> int:
    """QA_MAX_WAITING: how many questions may wait for the encoder in one worker; 0 turns the bound off."""
    value = os.environ.get("QA_MAX_WAITING", str(DEFAULT_MAX_WAITING))
    if not (value.isascii() and value.isdigit()):
        raise ValueError(f"QA_MAX_WAITING must be a whole number (0: no bound), not {value!r}")
    return int(value)


@dataclass(eq=False)
class _Request:
    text: str
    turn: threading.Event = field(default_factory=threading.Event)  # set: lead a batch, or the result is in
    done: bool = False
    vector: np.ndarray | None = None
    error: BaseException | None = None


class QuestionBatcher:
    def __init__(self, encode: Callable[[list[str]], np.ndarray], max_batch: int = MAX_BATCH,
                 max_waiting: int | None = None) -> None:
        self._encode = encode
        self.max_batch = max_batch
        self.max_waiting = max_waiting_from_env() if max_waiting is None else max_waiting  # 0: unbounded
        self._lock = threading.Lock()  # guards _queue and _busy
        self._queue: list[_Request] = []
        self._busy = False  # a batch is being encoded, or its leader is about to start one

    def embed(self, text: str) -> np.ndarray:
        """The question's vector; raises Overloaded at once when max_waiting questions already queue."""
        started = time.perf_counter()
        request = _Request(text)
        with self._lock:
            if self.max_waiting and len(self._queue) >= self.max_waiting:
                raise Overloaded(len(self._queue))
            self._queue.append(request)
            metrics.QUEUE_DEPTH.inc()
            if not self._busy:  # the queue was empty: this request is its head and leads at once
                self._busy = True
                request.turn.set()
        request.turn.wait()
        if not request.done:  # handed the lead: this request heads the queue, so the batch includes it
            self._encode_next_batch()
        if request.error is not None:
            raise request.error
        assert request.vector is not None
        metrics.ASK_SECONDS.labels("encode").observe(time.perf_counter() - started)
        return request.vector

    def _encode_next_batch(self) -> None:
        with self._lock:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            metrics.QUEUE_DEPTH.dec(len(batch))
        metrics.BATCH_SIZE.observe(len(batch))
        try:
            vectors = self._encode([r.text for r in batch])
        except BaseException as error:  # every question in the batch gets the error; the queue goes on
            for request in batch:
                request.error = error
        else:
            for request, vector in zip(batch, vectors):
                request.vector = vector
        for request in batch:
            request.done = True
            request.turn.set()
        with self._lock:
            if self._queue:
                self._queue[0].turn.set()
            else:
                self._busy = False
