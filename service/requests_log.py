"""Request ids and one JSON log line per request.

Each request gets an id: the client's `X-Request-Id` when it is printable ASCII of at most 128 characters, else
a new one. It is sent back in the `X-Request-Id` header and in every error body, and every log record made
while the request is handled carries it as `request_id`: the record factory installed here reads it from a
context variable, so the handlers of gunicorn, `python -m service` and pytest's caplog all see it (a
logging.Filter would have to be added to each of them).

When nothing else configured logging (gunicorn: the root logger has no handler), records are written to
stderr as JSON lines by `JsonFormatter`. The request line (logger `service.requests`) has: request_id,
method, route, status, ms, client, pid (the worker), build and, for questions, language and hits; the question itself only
with QA_LOG_QUESTIONS=1. It replaces gunicorn's access log (off in service/gunicorn.conf.py).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, current_app, g, request

MAX_ID_CHARS = 128
HEADER = "X-Request-Id"

log = logging.getLogger("service.requests")
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def register(app: Flask) -> None:
    """Call before any other before_request hook is added, so that even a request they refuse has an id."""
    app.config.setdefault("QA_LOG_QUESTIONS", os.environ.get("QA_LOG_QUESTIONS") == "1")
    _install_record_factory()
    _install_handler()
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_clear)


def current_request_id() -> str | None:
    return _request_id.get()


def note(**fields: Any) -> None:
    """Add fields to this request's log line (the view knows the question's language and hits)."""
    g.log_fields = {**g.get("log_fields", {}), **fields}


def _start() -> None:
    offered = request.headers.get(HEADER, "")
    valid = 0 < len(offered) <= MAX_ID_CHARS and all(" " <= c <= "~" for c in offered)
    g.request_id = offered if valid else uuid.uuid4().hex
    g.request_id_token = _request_id.set(g.request_id)
    g.started = time.perf_counter()


def _finish(response: Response) -> Response:
    response.headers[HEADER] = g.request_id
    fields = {
        "request_id": g.request_id, "method": request.method,
        "route": request.url_rule.rule if request.url_rule is not None else request.path,
        "status": response.status_code, "ms": round((time.perf_counter() - g.started) * 1000, 1),
        "client": request.remote_addr, "pid": os.getpid(), "build": _build_id(), **g.get("log_fields", {}),
    }
    if not current_app.config["QA_LOG_QUESTIONS"]:
        fields.pop("question", None)
    log.info("%s %s %s %.1f ms", request.method, request.path, response.status_code, fields["ms"],
             extra={"fields": fields})
    return response


def _clear(_error: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        _request_id.reset(token)


def _build_id() -> str | None:
    state = current_app.extensions.get("qa_state")
    retriever = state.current.retriever if state is not None else None
    return retriever.build_id if retriever is not None else None


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, request_id and the message, or a request line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "request_id": getattr(record, "request_id", None),
        }
        line.update(getattr(record, "fields", None) or {"message": record.getMessage()})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _install_record_factory() -> None:
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = _request_id.get()
        return record

    factory.adds_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _install_handler() -> None:
    """JSON lines on stderr unless logging is configured already; the service's INFO records included."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    service = logging.getLogger("service")
    if service.level == logging.NOTSET:
        service.setLevel(logging.INFO)
