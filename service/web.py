"""The web page: `/` asks /api/ask from the browser; `/documents/<doc_id>` shows one document to read.

Templates are in service/templates, scripts and styles in service/static (served by Flask at /static),
including the vendored opencc-js that converts between 简体 and 繁體 in the browser. Nothing is loaded from
elsewhere, and the Content-Security-Policy below says so: no inline scripts, no other origin.
"""
from __future__ import annotations

from flask import Blueprint, Response, render_template, request

from service import api, openapi
from service.errors import ApiError

bp = Blueprint("web", __name__)

LANGUAGE_LABELS = {"zh-Hans": "简体中文", "zh-Hant": "繁體中文", "en": "English", "mixed": "中英混合 mixed"}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.errorhandler(ApiError)
def _error_page(error: ApiError) -> tuple[str, int]:
    """The same refusals as the JSON API (bad id, unknown document, no index), as a page for people."""
    return render_template("error.html", error=error), error.status


@bp.get("/")
def index() -> str:
    return render_template("index.html", default_top_k=openapi.DEFAULT_TOP_K, question=request.args.get("q", ""))


@bp.get("/documents/<doc_id:doc_id>", merge_slashes=False)
def document(doc_id: str) -> str:
    """The document as /api/documents/<doc_id> returns it (same view, same checks); the cited passage is
    marked in the browser: the result link carries its text in the URL fragment (document.js)."""
    stored = api.document(doc_id)
    return render_template(
        "document.html", document=stored, question=request.args.get("q", ""), language_labels=LANGUAGE_LABELS,
        html_lang="zh" if stored["language"] == "mixed" else stored["language"],
    )
