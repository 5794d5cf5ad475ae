"""Every error the service sends is JSON: {"error": {"code": <stable string>, "message": <for people>,
"request_id": <the X-Request-Id of the request>}}."""
from __future__ import annotations

from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException

from service import metrics
from service.requests_log import current_request_id, note
from stores.contract import StoreUnavailable

# werkzeug's exceptions keep their own names as codes except where the HTTP name is clumsy
_HTTP_CODES = {413: "payload_too_large"}


class ApiError(Exception):
    """A request the service refuses; `code` is stable, external tools match on it. `headers` go with the
    response (Retry-After on 429 and 503)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def register(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(StoreUnavailable, _store_unavailable)
    app.register_error_handler(HTTPException, _http_exception)
    app.register_error_handler(Exception, _unexpected)


def error_body(code: str, message: str) -> dict:
    """The body of an error answer to the current request; its code also goes on the request's log line."""
    note(error=code)
    return {"error": {"code": code, "message": message, "request_id": current_request_id() or ""}}


def _api_error(error: ApiError) -> tuple[Response, int, dict[str, str]]:
    return jsonify(error_body(error.code, error.message)), error.status, error.headers


def _store_unavailable(error: StoreUnavailable) -> tuple[Response, int, dict[str, str]]:
    """The store (a Milvus server) did not answer in time: the client may retry; the service stays up."""
    current_app.logger.warning("store unavailable: %s", error)
    metrics.STORE_ERRORS.inc()
    return jsonify(error_body("store_unavailable", str(error))), 503, {"Retry-After": "5"}


def _http_exception(error: HTTPException) -> Response:
    """404, 405, 413, 415 … from routing and werkzeug: keep status and headers (Allow), swap the HTML body."""
    response = error.get_response()
    code = _HTTP_CODES.get(error.code, error.name.lower().replace(" ", "_"))
    response.data = current_app.json.dumps(error_body(code, error.description))
    response.content_type = "application/json"
    return response


def _unexpected(error: Exception) -> tuple[Response, int]:
    current_app.logger.exception("unexpected error", exc_info=error)
    return jsonify(error_body("internal_error", "the service failed to answer; the error is logged")), 500
