"""The HTTP contract as an OpenAPI 3.1 document, and the request limits it states (api.py enforces them)."""
from __future__ import annotations

from service.openapi_library import library_doc_paths, library_paths, library_schemas
from service.openapi_parts import closed_object, error_response, html_response, json_response, ref

QUESTION_MAX_CHARS = 1000
DEFAULT_TOP_K = 5
MAX_BODY_BYTES = 64 * 1024

LANGUAGES = ("zh-Hans", "zh-Hant", "en", "mixed")
ERROR_CODES = [
    "invalid_json", "invalid_question", "question_too_long", "invalid_top_k", "invalid_min_relevance", "invalid_doc_id",
    "invalid_folder", "invalid_language", "unsupported_media_type", "payload_too_large", "not_found",
    "method_not_allowed", "index_unavailable", "internal_error", "unauthorized", "overloaded", "rate_limited",
    # writing documents (service/library.py)
    "writes_disabled", "no_files", "too_many_files", "duplicate_names", "empty_file", "unsupported_file_type",
    "file_type_mismatch", "already_exists", "invalid_offset", "invalid_limit",
]
# what the API key (service/security.py) leaves open
OPEN_PATHS = ("/healthz", "/readyz")
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "the key of QA_API_KEY"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "the key of QA_API_KEY"},
}


def _schemas(max_top_k: int) -> dict:
    integer, string, nullable_string = {"type": "integer"}, {"type": "string"}, {"type": ["string", "null"]}
    offset = {"type": "integer", "minimum": 0}
    return {
        "Question": {
            "type": "string", "minLength": 1, "maxLength": QUESTION_MAX_CHARS,
            "description": f"1..{QUESTION_MAX_CHARS} characters after trimming whitespace; no NUL or other "
                           "control characters except tab, line feed and carriage return",
        },
        "TopK": {"type": "integer", "minimum": 1, "maximum": max_top_k, "default": DEFAULT_TOP_K},
        "MinRelevance": {"type": "number", "minimum": 0, "maximum": 1,
                         "description": "leave out passages less relevant than this; when none is left the answer "
                                        "abstains (default: QA_MIN_RELEVANCE, else the calibrated default)"},
        "Relevance": {"type": "number", "minimum": 0, "maximum": 1,
                      "description": "how likely the passage answers the question, calibrated on questions with "
                                     "and without an answer in the corpus"},
        "Folder": {"type": "string", "description": "only passages of documents under this corpus sub-folder"},
        "Language": {"type": "string", "enum": list(LANGUAGES),
                     "description": "only passages of documents in this language and script"},
        "AskRequest": {
            "type": "object",
            "properties": {"question": ref("Question"), "top_k": ref("TopK"), "folder": ref("Folder"),
                           "language": ref("Language"), "min_relevance": ref("MinRelevance")},
            "required": ["question"],
        },
        "Highlight": {
            **closed_object({"start": offset, "end": offset}),
            "description": "the sentence of `text` that best matches the question, as text[start:end]",
        },
        "Passage": closed_object({
            "rank": {"type": "integer", "minimum": 1},
            "doc_id": string,
            "title": string,
            "text": string,
            "start": {**offset, "description": "offset of the passage in the decoded file (text, web page) or in "
                                               "the document's extracted_text (PDF, Word)"},
            "end": {**offset, "description": "end offset (exclusive), likewise"},
            "score": {"type": "number"},
            "highlight": {"oneOf": [ref("Highlight"), {"type": "null"}]},
            "language": {"type": "string", "enum": list(LANGUAGES),
                         "description": "language and script of the cited document"},
            "page": {"type": ["integer", "null"], "minimum": 1,
                     "description": "paginated documents (PDF): the 1-based page the passage starts on; else null"},
            "page_end": {"type": ["integer", "null"], "minimum": 2,
                         "description": "the page the passage ends on when later than `page`; else null"},
            "relevance": ref("Relevance"),
        }),
        "AskResponse": closed_object({
            "question": string,
            "query_language": {"type": "string", "enum": ["zh-Hans", "zh-Hant", "en", "mixed"]},
            "passages": {"type": "array", "items": ref("Passage"), "maxItems": max_top_k},
            "min_relevance": ref("MinRelevance"),
            "abstained": {"type": "boolean", "description": "true when passages were found but none reached "
                                                            "min_relevance: nothing here answers the question"},
            "took_ms": {"type": "number", "minimum": 0},
        }),
        "Document": closed_object({
            "doc_id": string,
            "title": string,
            "language": string,
            "url": nullable_string,
            "date": nullable_string,
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "format": {"type": "string", "enum": ["text", "markdown", "html", "pdf", "docx"]},
            "passages": {**integer, "minimum": 0},
            "original_length": {**integer, "minimum": 0},
            "text": {**string, "description": "the full cleaned text"},
            "pages": {"oneOf": [{"type": "array", "items": closed_object({
                "page": {**integer, "minimum": 1}, "start": offset, "end": offset})}, {"type": "null"}],
                "description": "each page's [start, end) in `text`; null when the document has no pages"},
            "extracted_text": {**nullable_string, "description": "PDF and Word: the extracted text that passages' "
                               "start/end point into; null for files whose own text is cited"},
        }),
        "Health": closed_object({"status": {"type": "string", "enum": ["ok"]}}),
        "Ready": closed_object({
            "status": {"type": "string", "enum": ["ready"]},
            "index": {**string, "description": "the build id of the index in use"},
            "passages": {**integer, "minimum": 0},
        }),
        "Error": closed_object({
            "error": closed_object({
                "code": {"type": "string", "enum": ERROR_CODES}, "message": string,
                "request_id": {**string, "description": "the request's id, as in the X-Request-Id response header"},
            }),
        }),
    }


def _paths() -> dict:
    bad_request = error_response("invalid_question, question_too_long, invalid_top_k, invalid_min_relevance, "
                                 "invalid_folder or invalid_language (invalid_json for POST)")
    unavailable = error_response("index_unavailable: no usable index is loaded; the message says why")
    answer = json_response(ref("AskResponse"), "the best passages, best first")
    retry_after = {"Retry-After": {"description": "seconds to wait before asking again",
                                   "schema": {"type": "integer", "minimum": 1}}}
    refused = {
        "429": {**error_response("rate_limited: this client asked more than QA_RATE_LIMIT allows"),
                "headers": retry_after},
        "503": {**error_response("index_unavailable (no usable index is loaded; the message says why) or "
                                 "overloaded (QA_MAX_WAITING questions already wait for the encoder)"),
                "headers": retry_after},
    }
    return {
        "/api/ask": {
            "get": {
                "summary": "Ask a question (query string)",
                "parameters": [
                    {"name": "q", "in": "query", "required": True, "schema": ref("Question")},
                    {"name": "top_k", "in": "query", "required": False, "schema": ref("TopK"),
                     "description": "a base-10 integer"},
                    {"name": "folder", "in": "query", "required": False, "schema": ref("Folder")},
                    {"name": "language", "in": "query", "required": False, "schema": ref("Language")},
                    {"name": "min_relevance", "in": "query", "required": False, "schema": ref("MinRelevance"),
                     "description": "a decimal number such as 0.2"},
                ],
                "responses": {"200": answer, "400": bad_request, **refused},
            },
            "post": {
                "summary": "Ask a question (JSON body)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": ref("AskRequest")}}},
                "responses": {
                    "200": answer, "400": bad_request,
                    "413": error_response(f"payload_too_large: the body is over {MAX_BODY_BYTES} bytes"),
                    "415": error_response("unsupported_media_type: the body is not sent as application/json"),
                    **refused,
                },
            },
        },
        **library_paths(unavailable),
        "/api/documents/{doc_id}": {
            **library_doc_paths(),
            "get": {
                "summary": "One indexed document with its full cleaned text",
                "parameters": [{
                    "name": "doc_id", "in": "path", "required": True, "schema": {"type": "string"},
                    "description": "corpus-relative path as in passages' doc_id, slashes included "
                                   "(e.g. sub/dir/a.txt); no '.' or '..' segments, leading '/', '\\' or NUL",
                }],
                "responses": {
                    "200": json_response(ref("Document"), "the document"),
                    "400": error_response("invalid_doc_id"),
                    "404": error_response("not_found: no such document in the index"),
                    "503": unavailable,
                },
            },
        },
        "/healthz": {"get": {
            "summary": "Liveness: the process answers",
            "responses": {"200": json_response(ref("Health"), "always, while the process is up")},
        }},
        "/readyz": {"get": {
            "summary": "Readiness: an index is loaded",
            "responses": {"200": json_response(ref("Ready"), "ready to answer"), "503": unavailable},
        }},
        "/metrics": {"get": {
            "summary": "Counters, latency histograms and the served index in the Prometheus text format, "
                       "summed over all workers",
            "responses": {"200": {"description": "the metrics", "content": {
                "text/plain": {"schema": {"type": "string"}}}}},
        }},
        "/api/openapi.json": {"get": {
            "summary": "This document",
            "responses": {"200": json_response({"type": "object"}, "the OpenAPI document")},
        }},
        "/": {"get": {
            "summary": "The web page for people: ask, read cited passages, switch 原文/简体/繁體 (uses /api/ask)",
            "parameters": [{"name": "q", "in": "query", "required": False, "schema": {"type": "string"},
                            "description": "a question to ask as the page opens"}],
            "responses": {"200": html_response("the page")},
        }},
        "/library": {"get": {
            "summary": "The document library for people: list, upload (drag and drop), delete, follow jobs "
                       "(uses /api/documents and /api/jobs; writing needs the admin key)",
            "responses": {"200": html_response("the page")},
        }},
        "/documents/{doc_id}": {"get": {
            "summary": "One document as a page to read (the data of /api/documents/{doc_id}); a result links here "
                       "with #passage=<passage text>, which the page marks",
            "parameters": [
                {"name": "doc_id", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "as for /api/documents/{doc_id}"},
                {"name": "q", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "the question, for the link back to the results"},
            ],
            "responses": {
                "200": html_response("the document"),
                "400": html_response("invalid_doc_id, as a page"),
                "404": html_response("not_found, as a page"),
                "503": html_response("index_unavailable, as a page"),
            },
        }},
    }


def _guarded(paths: dict) -> dict:
    """With a key, every operation but the health checks needs it and may answer 401."""
    unauthorized = error_response("unauthorized: the API key is missing or wrong (the service has QA_API_KEY set)")
    for path, operations in paths.items():
        for operation in operations.values():
            if path in OPEN_PATHS:
                operation["security"] = []
            else:
                operation["responses"]["401"] = unauthorized
    return paths


def document(max_top_k: int, api_key: bool = False) -> dict:
    """The contract as served: with `api_key` (QA_API_KEY set) it says which requests need the key."""
    spec = {
        "openapi": "3.1.0",
        "info": {
            "title": "Bilingual document retrieval",
            "version": "1.0.0",
            "description": "Passages from Chinese (Simplified and Traditional) and English documents that answer "
                           "a question. Every error is JSON: Error, with a stable `code`. Unknown routes answer "
                           "404 not_found, wrong methods 405 method_not_allowed, failures 500 internal_error. "
                           "Every response carries X-Request-Id: the request's own (printable ASCII, at most 128 "
                           "characters) or a new one; error bodies and the service's log lines carry it too.",
        },
        "paths": _paths(),
        "components": {"schemas": {**_schemas(max_top_k), **library_schemas()}},
    }
    if api_key:
        spec["paths"] = _guarded(spec["paths"])
        spec["components"]["securitySchemes"] = SECURITY_SCHEMES
        spec["security"] = [{"bearer": []}, {"apiKey": []}]
    return spec
