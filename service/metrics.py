"""/metrics in the Prometheus text format: requests, ask latency by phase, encode batches, the queue, refusals,
and the index being served.

Under gunicorn every worker writes its samples to PROMETHEUS_MULTIPROC_DIR (a fresh folder per arbiter, set by
service/gunicorn.conf.py before any worker starts) and a scrape, answered by whichever worker, adds up all of
them; dead workers are marked by the arbiter's child_exit so that the queue gauge counts live ones only.
In one process (Flask's test client, `python -m service`) the default registry is used.

The index facts (build id, age, size, the build's duration and embedding-cache hits) are read from the manifest
of the build the answering worker serves, at scrape time.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from flask import Flask, Response, current_app, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:  # service.state imports the retriever, whose batcher imports this module
    from service.state import RetrieverState

TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"

REQUESTS = Counter("qa_requests", "HTTP requests answered, by route template, method and status",
                   ["route", "method", "status"])
ASK_SECONDS = Histogram(
    "qa_ask_seconds", "Time to answer a question, by phase: encode (waiting for and running the question's "
    "encode batch), search (both signals' candidates), fusion (ranking, merging, citing), total (the whole answer)", ["phase"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BATCH_SIZE = Histogram("qa_encode_batch_questions", "Questions encoded together in one forward pass",
                       buckets=(1, 2, 4, 8, 16, 32))
QUEUE_DEPTH = Gauge("qa_encode_queue_depth", "Questions waiting for the encoder", multiprocess_mode="livesum")
STORE_ERRORS = Counter("qa_store_errors", "Requests answered 503 because the store (a Milvus server) did not answer")
REFUSALS = Counter("qa_refusals", "Questions refused before answering: overloaded (the encoder queue is full, "
                   "503) or rate_limited (QA_RATE_LIMIT, 429)", ["reason"])


def register(app: Flask) -> None:
    """Count every response and serve /metrics (guarded by QA_API_KEY like any path not in OPEN_PATHS)."""
    app.after_request(_count)
    app.add_url_rule("/metrics", "metrics", _metrics)


def _count(response: Response) -> Response:
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    REQUESTS.labels(route, request.method, str(response.status_code)).inc()
    return response


def _metrics() -> Response:
    index = CollectorRegistry(auto_describe=False)
    index.register(IndexCollector(current_app.extensions["qa_state"]))
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        workers = CollectorRegistry()
        MultiProcessCollector(workers)
        text = generate_latest(workers)
    else:
        text = generate_latest(REGISTRY)
    return Response(text + generate_latest(index), content_type=TEXT_FORMAT)


class IndexCollector(Collector):
    """The build this worker serves, from its manifest; qa_index_ready 0 and nothing else when there is none."""

    def __init__(self, state: RetrieverState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        retriever = self.state.current.retriever
        yield GaugeMetricFamily("qa_index_ready", "1 when an index is loaded and answering",
                                value=int(retriever is not None))
        if retriever is None:
            return
        manifest: dict = retriever.store.manifest
        work, counts = manifest.get("work", {}), manifest.get("counts", {})
        info = InfoMetricFamily("qa_index", "The index build being served")
        info.add_metric([], {"build_id": retriever.build_id, "model": manifest["model"]["id"],
                             "vector_index": str(manifest.get("vector_index", ""))})
        yield info
        created = datetime.fromisoformat(manifest["created"]).timestamp()
        yield GaugeMetricFamily("qa_index_age_seconds", "Seconds since the served build was made",
                                value=time.time() - created)
        yield GaugeMetricFamily("qa_index_passages", "Passages in the served build", value=retriever.passage_count)
        yield GaugeMetricFamily("qa_index_documents", "Documents in the served build",
                                value=counts.get("documents", 0))
        yield GaugeMetricFamily("qa_index_skipped_files", "Corpus files the served build skipped",
                                value=counts.get("skipped", 0))
        yield GaugeMetricFamily("qa_index_build_seconds", "How long the served build took",
                                value=manifest.get("build_seconds", 0))
        passages = GaugeMetricFamily("qa_index_build_passages", "Passages of the served build by where their "
                                     "vector came from: embedded (encoded) or cached (embedding-cache hits)",
                                     labels=["source"])
        passages.add_metric(["embedded"], work.get("passages_embedded", 0))
        passages.add_metric(["cached"], work.get("passages_cached", 0))
        yield passages
