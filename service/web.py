"""The web pages: `/` asks /api/ask from the browser; `/documents/<doc_id>` shows one document to read;
`/library` lists, adds and deletes documents (through /api/documents and /api/jobs, from the browser).

Templates are in service/templates, scripts and styles in service/static (served by Flask at /static),
including the vendored opencc-js that converts between 简体 and 繁體 in the browser. Nothing is loaded from
elsewhere, and the Content-Security-Policy below says so: no inline scripts, no other origin.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request

from service import api, openapi
from service.errors import ApiError

bp = Blueprint("web", __name__)

LANGUAGE_LABELS = {"zh-Hans": "简体中文", "zh-Hant": "繁體中文", "en": "English", "mixed": "中英混合 mixed"}
# the language filter of the ask page: value sent as `language` → label ("" = any language, not sent)
LANGUAGE_FILTERS = {"": "全部语言 Any language", "zh-Hans": "简体中文", "zh-Hant": "繁體中文", "en": "English"}
FORMAT_LABELS = {"text": "纯文本 Text", "markdown": "Markdown", "html": "HTML", "pdf": "PDF", "docx": "Word (.docx)"}
EXTRACTED_FORMATS = ("pdf", "docx")  # passage offsets point into the text extracted from the file

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


def _filters() -> dict[str, str]:
    """The ask page's folder and language filters from the query string (?folder=…&language=…)."""
    language = request.args.get("language", "")
    return {"folder": request.args.get("folder", "").strip(),
            "language": language if language in LANGUAGE_FILTERS else ""}


@bp.get("/")
def index() -> str:
    return render_template(
        "index.html", default_top_k=openapi.DEFAULT_TOP_K, question=request.args.get("q", ""),
        language_filters=LANGUAGE_FILTERS, **_filters(),
    )


@bp.get("/documents/<doc_id:doc_id>", merge_slashes=False)
def document(doc_id: str) -> str:
    """The document as /api/documents/<doc_id> returns it (same view, same checks); the cited passage is
    marked in the browser: the result link carries its text in the URL fragment (document.js)."""
    stored = api.document(doc_id)
    back = {key: value for key, value in _filters().items() if value}
    return render_template(
        "document.html", document=stored, question=request.args.get("q", ""), back=back,
        language_labels=LANGUAGE_LABELS, format_labels=FORMAT_LABELS,
        extracted=stored.get("format") in EXTRACTED_FORMATS, segments=page_segments(stored),
        html_lang="zh" if stored["language"] == "mixed" else stored["language"],
    )


@bp.get("/library")
def library() -> str:
    """The documents of the index, uploads and deletions (library.js calls /api/documents and /api/jobs)."""
    return render_template("library.html", writable=bool(current_app.config.get("QA_ADMIN_KEY")),
                           language_labels=LANGUAGE_LABELS, format_labels=FORMAT_LABELS)


def page_segments(stored: dict) -> list[tuple[int | None, str]]:
    """The document's text cut at each page start: [(page number or None, text of that page)]. The page
    page shows a mark before each numbered segment (an element with no text: the label is drawn by CSS,
    so the text of #doc-text stays exactly the document's text, where the cited passage is looked up)."""
    text, pages = stored["text"], stored.get("pages")
    if not pages:
        return [(None, text)]
    segments: list[tuple[int | None, str]] = []
    if pages[0]["start"] > 0:
        segments.append((None, text[:pages[0]["start"]]))
    for page in pages:
        segments.append((page["page"], text[page["start"]:page["end"]]))
    return segments
