"""The HTTP service. `create_app()` is the factory gunicorn and `python -m service` both run.

Configuration, lowest precedence first: defaults, the environment (QA_INDEX, QA_MODEL, QA_MAX_TOP_K,
QA_RELOAD_SECONDS: how often a worker looks for a newly published build; QA_RATE_LIMIT: questions per client,
e.g. 20/s, off when empty; QA_MILVUS_URI, QA_COLLECTION, QA_MILVUS_TOKEN: serve a Milvus collection instead of
the index folder, which then holds only the library's jobs and the build's caches; QA_MIN_RELEVANCE: /api/ask's
default min_relevance, else the relevance model's, service/relevance.py), then the `config` argument.
QA_MAX_WAITING (the encoder queue's bound) is read from the environment by each retriever's batcher.
LOAD_INDEX=False skips loading the retriever (the app then answers 503).
"""
from __future__ import annotations

import os
from pathlib import Path

# OpenMP threads (FAISS's, torch's) sleep instead of spinning after each search: spinning, they took cores from
# ONNX Runtime's encode of the next question (20k-passage index: 1-client p50 18.2 -> 15.0 ms, 8 clients
# 75 -> 83 q/s). Read when the OpenMP runtime loads, so before FAISS is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from flask import Flask  # noqa: E402

from service import batching, errors, library, metrics, openapi, requests_log, security, web  # noqa: E402
from service.api import DocIdConverter, RateLimiter, bp  # noqa: E402
from service.relevance import min_relevance_setting  # noqa: E402
from service.state import RetrieverState  # noqa: E402
from stores import StoreConfig, locate  # noqa: E402


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        QA_INDEX=os.environ.get("QA_INDEX", "index"),
        QA_MODEL=os.environ.get("QA_MODEL") or None,
        QA_MAX_TOP_K=_positive_int("QA_MAX_TOP_K", os.environ.get("QA_MAX_TOP_K", "50")),
        MAX_CONTENT_LENGTH=openapi.MAX_BODY_BYTES,
        QA_RELOAD_SECONDS=float(os.environ.get("QA_RELOAD_SECONDS", "2")),  # look for a new build; 0: never
        QA_RATE_LIMIT=os.environ.get("QA_RATE_LIMIT", ""),
        QA_MILVUS_URI=os.environ.get("QA_MILVUS_URI") or None,
        QA_COLLECTION=os.environ.get("QA_COLLECTION") or None,
        QA_MIN_RELEVANCE=os.environ.get("QA_MIN_RELEVANCE") or None,
        LOAD_INDEX=True,
    )
    app.config.update(config or {})
    min_relevance_setting(app.config["QA_MIN_RELEVANCE"])  # a bad QA_MIN_RELEVANCE stops the start
    batching.max_waiting_from_env()  # a bad QA_MAX_WAITING stops the start, not every question
    rate_limit = app.config["QA_RATE_LIMIT"]
    app.extensions["qa_rate_limiter"] = RateLimiter(rate_limit) if rate_limit else None
    app.json.ensure_ascii = False  # Chinese passages as text, not \u escapes
    app.json.sort_keys = False  # keys in the documented order
    requests_log.register(app)  # first: its before_request gives even a refused request its id
    metrics.register(app)  # /metrics, and every response counted
    errors.register(app)
    security.register(app)  # QA_API_KEY, QA_CORS_ORIGINS
    app.url_map.converters["doc_id"] = DocIdConverter  # before the blueprint: its rules use it
    app.register_blueprint(bp)
    app.register_blueprint(web.bp)  # the page at / and /documents/<doc_id>
    library.register(app)  # list, upload and delete documents (QA_CORPUS, QA_ADMIN_KEY), jobs
    state = RetrieverState()
    if app.config["LOAD_INDEX"]:
        state.load(locate(store_config(app.config)), app.config["QA_MODEL"])
        state.reload_seconds = app.config["QA_RELOAD_SECONDS"]
        app.before_request(state.maybe_reload)
    app.extensions["qa_state"] = state
    return app


def store_config(config: dict) -> StoreConfig:
    """Where this app's builds are: the app's settings, QA_MILVUS_TOKEN from the environment (a secret)."""
    return StoreConfig(Path(config["QA_INDEX"]), config["QA_MILVUS_URI"], config["QA_COLLECTION"],
                       os.environ.get("QA_MILVUS_TOKEN") or None)


def _positive_int(name: str, value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)
