"""Optional API key and CORS, both off unless configured (QA_API_KEY, QA_CORS_ORIGINS; config keys of the same name).

With a key, every request but the health checks, the page's static files and CORS preflights must carry it
(`Authorization: Bearer <key>` or `X-API-Key: <key>`). The web pages are guarded too: /documents/<doc_id>
shows the same text as /api/documents/<doc_id>, and the page at / could not ask anything without the key.
"""
from __future__ import annotations

import hmac
import os

from flask import Flask, Response, current_app, jsonify, request

from service.errors import error_body
from service.openapi import OPEN_PATHS

CORS_METHODS = "GET, POST, DELETE"
CORS_HEADERS = "Content-Type, Authorization, X-API-Key, X-Admin-Key"
PREFLIGHT_MAX_AGE = "600"


def register(app: Flask) -> None:
    """Read the settings (the `config` argument of create_app wins over the environment) and hook requests."""
    app.config.setdefault("QA_API_KEY", os.environ.get("QA_API_KEY") or None)
    app.config.setdefault("QA_CORS_ORIGINS", os.environ.get("QA_CORS_ORIGINS", ""))
    app.before_request(_preflight_or_authorize)
    app.after_request(_allow_origin)


def _preflight_or_authorize() -> Response | tuple[Response, int, dict] | None:
    if request.method == "OPTIONS":  # preflights carry no credentials; Flask answers other OPTIONS with Allow
        return _preflight() if _is_preflight() else None
    key = current_app.config["QA_API_KEY"]
    admin_key = current_app.config.get("QA_ADMIN_KEY")  # the admin key reads too
    if not key or _is_open(request.path) or _carries(key) or (admin_key and _carries(admin_key)):
        return None
    body = error_body("unauthorized", "send the API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    return jsonify(body), 401, {"WWW-Authenticate": 'Bearer realm="api"'}


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith("/static/")


def _carries(key: str) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    offered = [request.headers.get("X-API-Key", ""), request.headers.get("X-Admin-Key", "")]
    if scheme.lower() == "bearer":
        offered.append(token.strip())
    # WSGI hands header bytes over as latin-1 text; a client sends a non-ASCII key as UTF-8
    expected = key.encode()
    return any(hmac.compare_digest(given.encode("latin-1", "replace"), expected) for given in offered if given)


def _allowed_origin() -> str | None:
    """The value for Access-Control-Allow-Origin, or None: CORS off, no Origin, or an origin not listed."""
    origin = request.headers.get("Origin")
    allowed = {entry.strip() for entry in current_app.config["QA_CORS_ORIGINS"].split(",") if entry.strip()}
    if origin is None or not request.path.startswith("/api/"):
        return None
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


def _is_preflight() -> bool:
    return "Access-Control-Request-Method" in request.headers and _allowed_origin() is not None


def _preflight() -> Response:
    response = current_app.response_class(status=204)
    response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
    response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return response


def _allow_origin(response: Response) -> Response:
    origin = _allowed_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        if origin != "*":
            response.vary.add("Origin")
    return response
