"""The HTTP contract as an OpenAPI 3.1 document, and the request limits it states (api.py enforces them)."""
from __future__ import annotations

QUESTION_MAX_CHARS = 1000
DEFAULT_TOP_K = 5
MAX_BODY_BYTES = 64 * 1024

ERROR_CODES = [
    "invalid_json", "invalid_question", "question_too_long", "invalid_top_k", "invalid_doc_id",
    "unsupported_media_type", "payload_too_large", "not_found", "method_not_allowed",
    "index_unavailable", "internal_error", "unauthorized",
]
# what the API key (service/security.py) leaves open
OPEN_PATHS = ("/healthz", "/readyz")
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "the key of QA_API_KEY"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "the key of QA_API_KEY"},
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _html(description: str) -> dict:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _error(description: str) -> dict:
    return _json(_ref("Error"), description)


def _object(properties: dict, optional: tuple[str, ...] = ()) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
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
        "AskRequest": {
            "type": "object",
            "properties": {"question": _ref("Question"), "top_k": _ref("TopK")},
            "required": ["question"],
        },
        "Highlight": {
            **_object({"start": offset, "end": offset}),
            "description": "the sentence of `text` that best matches the question, as text[start:end]",
        },
        "Passage": _object({
            "rank": {"type": "integer", "minimum": 1},
            "doc_id": string,
            "title": string,
            "text": string,
            "start": {**offset, "description": "offset of the passage in the original document"},
            "end": {**offset, "description": "end offset (exclusive) in the original document"},
            "score": {"type": "number"},
            "highlight": {"oneOf": [_ref("Highlight"), {"type": "null"}]},
            "language": {"type": "string", "enum": ["zh-Hans", "zh-Hant", "en", "mixed"],
                         "description": "language and script of the cited document"},
        }),
        "AskResponse": _object({
            "question": string,
            "query_language": {"type": "string", "enum": ["zh-Hans", "zh-Hant", "en", "mixed"]},
            "passages": {"type": "array", "items": _ref("Passage"), "maxItems": max_top_k},
            "took_ms": {"type": "number", "minimum": 0},
        }),
        "Document": _object({
            "doc_id": string,
            "title": string,
            "language": string,
            "url": nullable_string,
            "date": nullable_string,
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "original_length": {**integer, "minimum": 0},
            "text": {**string, "description": "the full cleaned text"},
        }),
        "Health": _object({"status": {"type": "string", "enum": ["ok"]}}),
        "Ready": _object({
            "status": {"type": "string", "enum": ["ready"]},
            "index": {**string, "description": "the build id of the index in use"},
            "passages": {**integer, "minimum": 0},
        }),
        "Error": _object({
            "error": _object({"code": {"type": "string", "enum": ERROR_CODES}, "message": string}),
        }),
    }


def _paths() -> dict:
    bad_request = _error("invalid_question, question_too_long or invalid_top_k (invalid_json for POST)")
    unavailable = _error("index_unavailable: no usable index is loaded; the message says why")
    answer = _json(_ref("AskResponse"), "the best passages, best first")
    return {
        "/api/ask": {
            "get": {
                "summary": "Ask a question (query string)",
                "parameters": [
                    {"name": "q", "in": "query", "required": True, "schema": _ref("Question")},
                    {"name": "top_k", "in": "query", "required": False, "schema": _ref("TopK"),
                     "description": "a base-10 integer"},
                ],
                "responses": {"200": answer, "400": bad_request, "503": unavailable},
            },
            "post": {
                "summary": "Ask a question (JSON body)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("AskRequest")}}},
                "responses": {
                    "200": answer, "400": bad_request,
                    "413": _error(f"payload_too_large: the body is over {MAX_BODY_BYTES} bytes"),
                    "415": _error("unsupported_media_type: the body is not sent as application/json"),
                    "503": unavailable,
                },
            },
        },
        "/api/documents/{doc_id}": {
            "get": {
                "summary": "One indexed document with its full cleaned text",
                "parameters": [{
                    "name": "doc_id", "in": "path", "required": True, "schema": {"type": "string"},
                    "description": "corpus-relative path as in passages' doc_id, slashes included "
                                   "(e.g. sub/dir/a.txt); no '.' or '..' segments, leading '/', '\\' or NUL",
                }],
                "responses": {
                    "200": _json(_ref("Document"), "the document"),
                    "400": _error("invalid_doc_id"),
                    "404": _error("not_found: no such document in the index"),
                    "503": unavailable,
                },
            },
        },
        "/healthz": {"get": {
            "summary": "Liveness: the process answers",
            "responses": {"200": _json(_ref("Health"), "always, while the process is up")},
        }},
        "/readyz": {"get": {
            "summary": "Readiness: an index is loaded",
            "responses": {"200": _json(_ref("Ready"), "ready to answer"), "503": unavailable},
        }},
        "/api/openapi.json": {"get": {
            "summary": "This document",
            "responses": {"200": _json({"type": "object"}, "the OpenAPI document")},
        }},
        "/": {"get": {
            "summary": "The web page for people: ask, read cited passages, switch 原文/简体/繁體 (uses /api/ask)",
            "parameters": [{"name": "q", "in": "query", "required": False, "schema": {"type": "string"},
                            "description": "a question to ask as the page opens"}],
            "responses": {"200": _html("the page")},
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
                "200": _html("the document"),
                "400": _html("invalid_doc_id, as a page"),
                "404": _html("not_found, as a page"),
                "503": _html("index_unavailable, as a page"),
            },
        }},
    }


def _guarded(paths: dict) -> dict:
    """With a key, every operation but the health checks needs it and may answer 401."""
    unauthorized = _error("unauthorized: the API key is missing or wrong (the service has QA_API_KEY set)")
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
                           "404 not_found, wrong methods 405 method_not_allowed, failures 500 internal_error.",
        },
        "paths": _paths(),
        "components": {"schemas": _schemas(max_top_k)},
    }
    if api_key:
        spec["paths"] = _guarded(spec["paths"])
        spec["components"]["securitySchemes"] = SECURITY_SCHEMES
        spec["security"] = [{"bearer": []}, {"apiKey": []}]
    return spec
