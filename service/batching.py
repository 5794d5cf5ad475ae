"""Micro-batching: questions asked at the same time are encoded together, in one forward pass.

Nothing waits for a batch to fill: a question arriving while an encoder lane is free is encoded at once by its
own thread; those arriving while every lane is busy queue up, and when a batch ends the oldest of them encodes
the next batch from the queue (leader/follower, so a lone client pays no thread hand-off).

Lanes: how many batches may be encoded at once, the encoder's `parallel_calls`. torch has one: its batches are
what make it fast (2 cores: 36 questions/s one at a time, 97 in batches of 8). ONNX Runtime gains little from
batching (107–124 vs 126–132 questions/s, benchmarks/RESULTS.md) but runs calls side by side, so it has two,
each taking at most two questions: a question need not wait for a batch it missed, the cores stay busy while
the other requests' Python holds the GIL, and no long batch shares the cores with another. 8 clients in process
over the datasets index, one lane of up to 16 → two of up to 2: 94 → 108 questions/s, p50 83 → 73 ms, p99
116–120 → 107 ms (two lanes of up to 16: 106 questions/s but p99 167–189 ms, a long batch running at half speed
beside another). Over HTTP, old and new code alternating three times: 87 → 95–96 questions/s, p50 91 → 82 ms,
p99 121–128 → 119–126 ms.
The service's ONNX encoder packs a lane's questions into one row (indexer/packing.py), so a batch of two costs
their tokens rather than twice the longer one's: over HTTP, 8 clients, alternating three times, 100.5, 98.0,
99.3 → 105.0, 109.0, 108.5 questions/s. Lanes of up to 4 packed questions were no faster than 2 and only lengthened
the tail (p99 133–145 against 107–113 ms).

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

MAX_BATCH = 16  # one lane: longer batches raise every member's latency more than they add throughput
SIDE_BY_SIDE_BATCH = 2  # several lanes: the longest batch (see above)
# 1: at most one question waits while the lanes encode, so an answer waits for at most two encodes. 64 clients,
# one worker, 2 cores, two lanes (make bench 2026-11-24 06:44): answered p99 2.8× one client's, 83 answers/s
# (bound 8: 7.7×, 91/s; none: 32×, 96/s; one lane: 1.9×, 65/s). benchmarks/RESULTS.md, "Overload".
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
    turn: threading.Event = field(default_factory=threading.Event)  # set: lead `batch`, or the result is in
    vector: np.ndarray | None = None
    error: BaseException | None = None
    batch: list[_Request] | None = None  # the batch this request leads, taken off the queue when it was given the lead


class QuestionBatcher:
    def __init__(self, encode: Callable[[list[str]], np.ndarray], max_batch: int | None = None,
                 max_waiting: int | None = None, lanes: int = 1) -> None:
        self._encode = encode
        self.max_batch = max_batch or (MAX_BATCH if lanes == 1 else SIDE_BY_SIDE_BATCH)
        self.max_waiting = max_waiting_from_env() if max_waiting is None else max_waiting  # 0: unbounded
        self.lanes = lanes
        self._lock = threading.Lock()  # guards _queue and _running
        self._queue: list[_Request] = []
        self._running = 0  # batches being encoded (or handed to a leader about to encode them): at most `lanes`

    def embed(self, text: str) -> np.ndarray:
        """The question's vector; raises Overloaded at once when max_waiting questions already queue."""
        started = time.perf_counter()
        request = _Request(text)
        with self._lock:
            if self.max_waiting and len(self._queue) >= self.max_waiting:
                raise Overloaded(len(self._queue))
            self._queue.append(request)
            metrics.QUEUE_DEPTH.inc()
            if self._running < self.lanes:  # a lane is free, so the queue held nothing before this request
                self._running += 1
                self._lead_next()
        request.turn.wait()
        if request.batch is not None:  # given the lead: the batch includes this request
            self._encode_batch(request.batch)
        if request.error is not None:
            raise request.error
        assert request.vector is not None
        metrics.ASK_SECONDS.labels("encode").observe(time.perf_counter() - started)
        return request.vector

    def _lead_next(self) -> None:
        """Under the lock: the head of the queue leads the batch taken off it (a lane passes to it)."""
        batch = self._queue[: self.max_batch]
        del self._queue[: self.max_batch]
        metrics.QUEUE_DEPTH.dec(len(batch))
        batch[0].batch = batch
        batch[0].turn.set()

    def _encode_batch(self, batch: list[_Request]) -> None:
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
            request.turn.set()
        with self._lock:
            if self._queue:
                self._lead_next()
            else:
                self._running -= 1
