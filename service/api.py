"""The routes: /api/ask, /api/documents/<doc_id>, /healthz, /readyz, /api/openapi.json.

/api/ask refuses at once rather than queue without limit: 503 overloaded when the encoder's queue is full
(service/batching.py, QA_MAX_WAITING) and, with QA_RATE_LIMIT set, 429 rate_limited to a client asking faster
than its share; both with Retry-After.
"""
from __future__ import annotations

import json
import math
import re
import threading
import time
import unicodedata
from typing import Any

from flask import Blueprint, current_app, request
from werkzeug.routing import BaseConverter

from stores.sqlite import StoredDocument
from service import metrics, openapi, requests_log
from service.batching import Overloaded
from service.errors import ApiError
from service.relevance import min_relevance_setting
from service.retrieval import Answer, Hit, Retriever, Scope
from service.state import RetrieverState

bp = Blueprint("api", __name__)

_ALLOWED_CONTROLS = {"\t", "\n", "\r"}
_BASE10 = re.compile(r"[+-]?[0-9]{1,9}")  # longer numbers are out of range anyway
_DECIMAL = re.compile(r"[0-9]{1,9}(\.[0-9]{0,9})?|\.[0-9]{1,9}")  # min_relevance in a query string: 0.25, .5, 1
OVERLOAD_RETRY_SECONDS = 1  # a full queue (32: two batches of 16) drains in a fraction of a second on idle cores


class RateLimiter:
    """QA_RATE_LIMIT ("20/s", "600/m", "1000/h"): a token bucket per client address, in each worker: bursts of
    up to the count, then the count per period on average."""

    PERIODS = {"s": 1, "m": 60, "h": 3600}
    MAX_CLIENTS = 10_000  # past this, the buckets of clients back to a full allowance are forgotten

    def __init__(self, setting: str) -> None:
        count, _, unit = setting.partition("/")
        if not (count.isascii() and count.isdigit() and int(count) > 0 and unit in self.PERIODS):
            raise ValueError(f"QA_RATE_LIMIT must look like 20/s, 600/m or 1000/h, not {setting!r}")
        self.burst, self.rate = int(count), int(count) / self.PERIODS[unit]
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # client: (tokens, when counted)

    def wait(self, client: str) -> float:
        """0 when `client` may ask now (it spends a token), else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            allowed = tokens >= 1
            self._buckets[client] = (tokens - 1 if allowed else tokens, now)
            if len(self._buckets) > self.MAX_CLIENTS:
                self._buckets = {c: (t, w) for c, (t, w) in self._buckets.items()
                                 if t + (now - w) * self.rate < self.burst}
        return 0.0 if allowed else (1 - tokens) / self.rate


class DocIdConverter(BaseConverter):
    """The rest of the URL path, slashes included, even a leading one: the view refuses what is no doc id.

    (werkzeug's `path` converter would route a leading slash to a 404 instead of the promised 400.)
    """

    regex = r"[\s\S]+"  # not ".+": an id ending in a line break would fall through to the generic JSON 404
    part_isolating = False


@bp.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> dict:
    retriever = current_retriever()
    retriever.store.ping()  # a store server that is down: 503 store_unavailable with its reason
    return {"status": "ready", "index": retriever.build_id, "passages": retriever.passage_count}


@bp.get("/api/openapi.json")
def openapi_document() -> dict:
    return openapi.document(_max_top_k(), api_key=bool(current_app.config["QA_API_KEY"]))


@bp.post("/api/ask")
def ask_json() -> dict:
    _admit()
    body = _json_object()
    top_k = body.get("top_k", openapi.DEFAULT_TOP_K)
    if type(top_k) is not int:  # bool is an int subclass; floats and strings are refused too
        raise _top_k_error()
    min_relevance = body.get("min_relevance", default_min_relevance())
    if type(min_relevance) not in (int, float):
        raise _min_relevance_error()
    return _ask(body.get("question"), top_k, check_scope(body.get("folder"), body.get("language")), min_relevance)


@bp.get("/api/ask")
def ask_query() -> dict:
    _admit()
    raw = request.args.get("top_k")
    if raw is not None and not _BASE10.fullmatch(raw):
        raise _top_k_error()
    scope = check_scope(request.args.get("folder"), request.args.get("language"))
    relevance = request.args.get("min_relevance")
    if relevance is not None and not _DECIMAL.fullmatch(relevance):
        raise _min_relevance_error()
    min_relevance = default_min_relevance() if relevance is None else float(relevance)
    return _ask(request.args.get("q"), openapi.DEFAULT_TOP_K if raw is None else int(raw), scope, min_relevance)


@bp.get("/api/documents/<doc_id:doc_id>", merge_slashes=False)
def document(doc_id: str) -> dict:
    check_doc_id(doc_id)
    stored = current_retriever().document(doc_id)
    if stored is None:
        raise ApiError(404, "not_found", f"no document {doc_id!r} in the index")
    return {
        "doc_id": stored.doc_id, "title": stored.title, "language": stored.language, "url": stored.url,
        "date": stored.date, "sha256": stored.sha256, "format": stored.format, "passages": stored.passage_count,
        "original_length": stored.original_length, "text": stored.clean_text, "pages": _pages(stored),
        "extracted_text": stored.extracted_text,
    }


def _pages(stored: StoredDocument) -> list[dict] | None:
    """Each page's [start, end) in `text` (the cleaned text the document view shows), or None: no pages."""
    if not stored.page_starts:
        return None
    ends = [*stored.page_starts[1:], len(stored.clean_text)]
    return [{"page": n, "start": start, "end": end} for n, (start, end) in enumerate(zip(stored.page_starts, ends), 1)]


def _admit() -> None:
    """429 rate_limited when QA_RATE_LIMIT is set and this client has used its allowance."""
    limiter: RateLimiter | None = current_app.extensions["qa_rate_limiter"]
    wait = limiter.wait(request.remote_addr or "") if limiter is not None else 0.0
    if wait > 0:
        metrics.REFUSALS.labels("rate_limited").inc()
        seconds = math.ceil(wait)
        message = (f"too many questions from this client (QA_RATE_LIMIT {current_app.config['QA_RATE_LIMIT']}); "
                   f"retry after {seconds} s")
        raise ApiError(429, "rate_limited", message, {"Retry-After": str(seconds)})


def _ask(question: Any, top_k: int, scope: Scope, min_relevance: float) -> dict:
    question = check_question(question)
    if not 1 <= top_k <= _max_top_k():
        raise _top_k_error()
    if not 0 <= min_relevance <= 1:
        raise _min_relevance_error()
    try:
        body = answer_json(current_retriever(), question, top_k, scope, min_relevance)
    except Overloaded as error:
        metrics.REFUSALS.labels("overloaded").inc()
        raise ApiError(503, "overloaded", f"the service is busy: {error}; retry after {OVERLOAD_RETRY_SECONDS} s",
                       {"Retry-After": str(OVERLOAD_RETRY_SECONDS)}) from None
    metrics.ASK_SECONDS.labels("total").observe(body["took_ms"] / 1000)
    requests_log.note(language=body["query_language"], hits=len(body["passages"]), question=question)
    return body


def answer_json(retriever: Retriever, question: str, top_k: int, scope: Scope = Scope(),
                min_relevance: float = 0.0) -> dict:
    """The /api/ask answer to a checked question, timed; `python -m service.cli ask --json` prints the same."""
    started = time.perf_counter()
    answer = retriever.ask(question, top_k, scope=scope, min_relevance=min_relevance)
    took_ms = round((time.perf_counter() - started) * 1000, 1)
    return _answer_json(answer, min_relevance, took_ms)


def _answer_json(answer: Answer, min_relevance: float, took_ms: float) -> dict:
    return {
        "question": answer.question,
        "query_language": answer.query_language,
        "passages": [_passage_json(hit) for hit in answer.hits],
        "min_relevance": min_relevance,
        "abstained": answer.abstained,
        "took_ms": took_ms,
    }


def _passage_json(hit: Hit) -> dict:
    return {
        "rank": hit.rank, "doc_id": hit.doc_id, "title": hit.title, "text": hit.text,
        "start": hit.start, "end": hit.end, "score": hit.score,
        "highlight": None if hit.highlight is None else {"start": hit.highlight[0], "end": hit.highlight[1]},
        "language": hit.language, "page": hit.page, "page_end": hit.page_end, "relevance": hit.relevance,
    }


def _json_object() -> dict:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the question as JSON with Content-Type: application/json")
    try:
        body = json.loads(request.get_data(cache=False))  # get_data answers 413 past MAX_CONTENT_LENGTH
    except (ValueError, RecursionError) as error:  # bad syntax or encoding, or nesting too deep
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", 'the body must be a JSON object: {"question": "…", "top_k": 5}')
    return body


def check_question(question: Any) -> str:
    if not isinstance(question, str):
        raise ApiError(400, "invalid_question", "question is required and must be a string (GET: the q parameter)")
    question = question.strip()
    if not question:
        raise ApiError(400, "invalid_question", "question is empty")
    if len(question) > openapi.QUESTION_MAX_CHARS:
        raise ApiError(
            400, "question_too_long",
            f"question has {len(question)} characters, at most {openapi.QUESTION_MAX_CHARS} are allowed",
        )
    if any(_is_control(character) for character in question):
        raise ApiError(400, "invalid_question", "question contains NUL, control characters or lone surrogates")
    return question


def _is_control(character: str) -> bool:
    return unicodedata.category(character) in ("Cc", "Cs") and character not in _ALLOWED_CONTROLS


def check_doc_id(doc_id: str) -> None:
    """Ids are corpus-relative paths; they are only looked up in the store, but never accept a path escape."""
    if not is_relative_path(doc_id):
        raise ApiError(
            400, "invalid_doc_id",
            "doc_id must be a corpus-relative path: no leading '/', no '.' or '..' segments, no '\\' or NUL",
        )


def is_relative_path(path: str) -> bool:
    """A corpus-relative path that cannot escape the corpus: no leading '/', '.' or '..' segment, '\\' or NUL."""
    return not (path.startswith("/") or "\\" in path or "\0" in path or {".", ".."} & set(path.split("/"))
                or any(_is_control(c) for c in path))


def check_scope(folder: Any, language: Any) -> Scope:
    """The optional `folder` (a corpus sub-folder) and `language` filters of /api/ask."""
    if folder is not None and (not isinstance(folder, str) or not folder.strip("/") or not is_relative_path(folder.strip("/"))):
        raise ApiError(400, "invalid_folder", "folder must be a corpus sub-folder such as 'reports/2024' "
                                              "(no '.' or '..' segments, '\\' or NUL)")
    if language is not None and language not in openapi.LANGUAGES:
        raise ApiError(400, "invalid_language", f"language must be one of {', '.join(openapi.LANGUAGES)}")
    return Scope(folder.strip("/") if folder else None, language)


def default_min_relevance() -> float:
    return min_relevance_setting(current_app.config.get("QA_MIN_RELEVANCE"))


def _min_relevance_error() -> ApiError:
    return ApiError(400, "invalid_min_relevance", "min_relevance must be a number from 0 to 1")


def _top_k_error() -> ApiError:
    return ApiError(400, "invalid_top_k", f"top_k must be an integer from 1 to {_max_top_k()}")


def _max_top_k() -> int:
    return current_app.config["QA_MAX_TOP_K"]


def current_retriever() -> Retriever:
    state: RetrieverState = current_app.extensions["qa_state"]
    snapshot = state.current
    if snapshot.retriever is None:
        raise ApiError(503, "index_unavailable", snapshot.reason)
    return snapshot.retriever
