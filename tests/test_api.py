"""The HTTP layer against a real index of corpus/: every endpoint, every error path, and the OpenAPI spec."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from stores.index_dir import current_build
from service import create_app

ZH_HANT_QUESTION = "OpenAI與AWS的協議價值多少？"
EN_QUESTION = "How much is the OpenAI and AWS deal worth?"


def assert_error(response: TestResponse, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert set(response.json) == {"error"} and set(response.json["error"]) == {"code", "message", "request_id"}
    assert response.json["error"]["request_id"] == response.headers["X-Request-Id"]
    assert response.json["error"]["code"] == code
    assert isinstance(response.json["error"]["message"], str) and response.json["error"]["message"]


def ask(client: FlaskClient, question: str, **extra: object) -> TestResponse:
    return client.post("/api/ask", json={"question": question, **extra})


# --- answers -------------------------------------------------------------------------------------------------

def test_traditional_chinese_question_gets_structured_passages(client: FlaskClient) -> None:
    response = ask(client, ZH_HANT_QUESTION)
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.json
    assert list(body) == ["question", "query_language", "passages", "min_relevance", "abstained", "took_ms"]
    assert body["abstained"] is False
    assert body["question"] == ZH_HANT_QUESTION and body["query_language"] == "zh-Hant"
    assert isinstance(body["took_ms"], float) and body["took_ms"] >= 0 and round(body["took_ms"], 1) == body["took_ms"]
    passages = body["passages"]
    assert 1 <= len(passages) <= 5
    assert [p["rank"] for p in passages] == list(range(1, len(passages) + 1))
    for passage in passages:
        assert list(passage) == ["rank", "doc_id", "title", "text", "start", "end", "score", "highlight", "language",
                                 "page", "page_end", "relevance"]
        assert body["min_relevance"] <= passage["relevance"] <= 1
        assert passage["page"] is None and passage["page_end"] is None  # text files have no pages
        assert passage["text"] and 0 <= passage["start"] < passage["end"]
        assert passage["language"] in ("zh-Hans", "zh-Hant", "en", "mixed")
        if passage["highlight"] is not None:
            assert 0 <= passage["highlight"]["start"] < passage["highlight"]["end"] <= len(passage["text"])
    assert "協議" in response.get_data(as_text=True)  # sent as UTF-8 text, not \u escapes


def test_english_question_by_get_and_post_agree(client: FlaskClient) -> None:
    by_get = client.get("/api/ask", query_string={"q": EN_QUESTION, "top_k": "3"})
    by_post = ask(client, EN_QUESTION, top_k=3)
    assert by_get.status_code == by_post.status_code == 200
    assert by_get.json["query_language"] == "en"
    assert 1 <= len(by_get.json["passages"]) <= 3
    assert [p["doc_id"] for p in by_get.json["passages"]] == [p["doc_id"] for p in by_post.json["passages"]]


@pytest.mark.parametrize("question, top_k", [
    (" 微软 OpenAI \n", 1),  # trimmed; tab, newline and carriage return are ordinary whitespace
    ("微软\tOpenAI\r\n投资", 50),
    ("  " + "微" * 1000 + "  ", 5),  # 1000 characters after trimming is the limit, inclusive
])
def test_edge_questions_are_answered(client: FlaskClient, question: str, top_k: int) -> None:
    response = ask(client, question, top_k=top_k)
    assert response.status_code == 200, response.json
    assert response.json["question"] == question.strip()
    assert len(response.json["passages"]) <= top_k


# --- documents -----------------------------------------------------------------------------------------------

def test_document_of_a_passage(client: FlaskClient) -> None:
    passage = ask(client, ZH_HANT_QUESTION, top_k=1).json["passages"][0]
    response = client.get(f"/api/documents/{passage['doc_id']}")
    assert response.status_code == 200
    document = response.json
    assert list(document) == ["doc_id", "title", "language", "url", "date", "sha256", "format", "passages",
                              "original_length", "text", "pages", "extracted_text"]
    assert document["format"] == "text" and document["pages"] is None and document["extracted_text"] is None
    assert document["doc_id"] == passage["doc_id"] and document["title"] == passage["title"]
    assert document["text"] and passage["end"] <= document["original_length"]
    assert re.fullmatch(r"[0-9a-f]{64}", document["sha256"])


@pytest.mark.parametrize("path", ["/api/documents/no-such.txt", "/api/documents/sub/dir/a.txt",
                                  "/api/documents/%E4%B8%AD%E6%96%87.txt"])
def test_unknown_document_is_404(client: FlaskClient, path: str) -> None:
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize("path", [
    "/api/documents/../etc/passwd", "/api/documents/a/../../etc/passwd", "/api/documents/a/./b.txt",
    "/api/documents//etc/passwd", "/api/documents/%2Fetc%2Fpasswd", "/api/documents/%2e%2e/%2e%2e/etc/passwd",
    "/api/documents/a/%2E%2E/b.txt", "/api/documents/a%5C..%5Cb.txt", "/api/documents/..%5Cetc",
    "/api/documents/a.txt%00", "/api/documents/a%00/../b",
])
def test_path_escapes_are_400(client: FlaskClient, path: str) -> None:
    assert_error(client.get(path), 400, "invalid_doc_id")


# --- health --------------------------------------------------------------------------------------------------

def test_health_and_readiness(client: FlaskClient, seed_index: Path) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["status"] == "ready" and ready.json["index"] == current_build(seed_index).name
    assert isinstance(ready.json["passages"], int) and ready.json["passages"] > 0


@pytest.mark.parametrize("config", [
    {"LOAD_INDEX": False},
    {"QA_MODEL": "/nonexistent/model-folder"},  # fails before any model is loaded
])
def test_without_an_index_every_index_route_is_503(seed_index: Path, config: dict) -> None:
    client = create_app({"QA_INDEX": str(seed_index), **config}).test_client()
    assert client.get("/healthz").json == {"status": "ok"}
    for response in (client.get("/readyz"), ask(client, "hello"), client.get("/api/ask?q=hello"),
                     client.get("/api/documents/a.txt")):
        assert_error(response, 503, "index_unavailable")
    assert_error(ask(client, ""), 400, "invalid_question")  # bad input is still the client's mistake


def test_missing_index_reason_is_reported(tmp_path: Path) -> None:
    client = create_app({"QA_INDEX": str(tmp_path / "never-built")}).test_client()
    response = client.get("/readyz")
    assert_error(response, 503, "index_unavailable")
    assert "never-built" in response.json["error"]["message"]


def test_unexpected_exception_is_500_json() -> None:
    app = create_app({"LOAD_INDEX": False})

    def fail() -> None:
        raise RuntimeError("boom")

    app.add_url_rule("/fail", view_func=fail)
    response = app.test_client().get("/fail")
    assert_error(response, 500, "internal_error")
    assert "boom" not in response.json["error"]["message"]


# --- every client mistake ------------------------------------------------------------------------------------

JSON = "application/json"
BAD_REQUESTS = [  # (method, path, keyword arguments for the test client, status, code)
    ("get", "/nope", {}, 404, "not_found"),
    ("get", "/api", {}, 404, "not_found"),
    ("get", "/api/documents/", {}, 404, "not_found"),
    ("put", "/api/ask", {"json": {"question": "hi"}}, 405, "method_not_allowed"),
    ("delete", "/api/documents/a.txt", {}, 403, "writes_disabled"),  # no QA_ADMIN_KEY: writing is off
    ("post", "/api/documents", {}, 403, "writes_disabled"),
    ("put", "/api/documents/a.txt", {}, 405, "method_not_allowed"),
    ("post", "/api/ask", {"json": {"question": "hi", "language": "fr"}}, 400, "invalid_language"),
    ("post", "/api/ask", {"json": {"question": "hi", "folder": "../x"}}, 400, "invalid_folder"),
    ("get", "/api/ask?q=hi&folder=a/../b", {}, 400, "invalid_folder"),
    ("get", "/api/jobs/nope", {}, 404, "not_found"),
    ("get", "/api/documents?limit=0", {}, 400, "invalid_limit"),
    ("post", "/healthz", {}, 405, "method_not_allowed"),
    ("post", "/readyz", {}, 405, "method_not_allowed"),
    ("post", "/api/ask", {"data": '{"question": "hi"}'}, 415, "unsupported_media_type"),
    ("post", "/api/ask", {"data": '{"question": "hi"}', "content_type": "text/plain"}, 415, "unsupported_media_type"),
    ("post", "/api/ask", {"data": {"question": "hi"}}, 415, "unsupported_media_type"),
    ("post", "/api/ask", {"data": '{"question": "' + "x" * 70_000 + '"}', "content_type": JSON}, 413,
     "payload_too_large"),
    ("post", "/api/ask", {"data": "", "content_type": JSON}, 400, "invalid_json"),
    ("post", "/api/ask", {"data": '{"question": ', "content_type": JSON}, 400, "invalid_json"),
    ("post", "/api/ask", {"data": b'{"question": "\xff\xfe"}', "content_type": JSON}, 400, "invalid_json"),
    ("post", "/api/ask", {"data": "[" * 30_000 + "]" * 30_000, "content_type": JSON}, 400, "invalid_json"),
    *[("post", "/api/ask", {"data": body, "content_type": JSON}, 400, "invalid_json")
      for body in ('["hi"]', '"hi"', "null", "5", "true")],
    *[("post", "/api/ask", {"json": body}, 400, "invalid_question")
      for body in ({}, {"q": "hi"}, {"question": None}, {"question": 5}, {"question": ["hi"]}, {"question": ""},
                   {"question": " \n\t "}, {"question": "a\x00b"}, {"question": "a\x07b"}, {"question": "\x1b[31m"},
                   {"question": "a\x7fb"}, {"question": "a\x85b"})],
    ("post", "/api/ask", {"data": '{"question": "a\\ud800b"}', "content_type": JSON}, 400, "invalid_question"),
    ("post", "/api/ask", {"json": {"question": "x" * 1001}}, 400, "question_too_long"),
    *[("post", "/api/ask", {"json": {"question": "hi", "top_k": top_k}}, 400, "invalid_top_k")
      for top_k in (True, False, 5.0, "5", None, [5], {}, 0, -1, 51, 10**30)],
    ("post", "/api/ask", {"data": '{"question": "hi", "top_k": NaN}', "content_type": JSON}, 400, "invalid_top_k"),
    *[("post", "/api/ask", {"json": {"question": "hi", "min_relevance": value}}, 400, "invalid_min_relevance")
      for value in (True, "0.5", None, [0.5], -0.1, 1.01, 10**30)],
    ("post", "/api/ask", {"data": '{"question": "hi", "min_relevance": NaN}', "content_type": JSON}, 400,
     "invalid_min_relevance"),
    *[("get", "/api/ask", {"query_string": {"q": "hi", "min_relevance": value}}, 400, "invalid_min_relevance")
      for value in ("", "abc", "-0.5", "1.5", "nan", "inf", "1e-1", "0,5", "０.５")],
    ("get", "/api/ask", {}, 400, "invalid_question"),
    *[("get", "/api/ask", {"query_string": {"q": q}}, 400, "invalid_question") for q in ("", "   ", "a\x00b")],
    ("get", "/api/ask", {"query_string": {"q": "x" * 1001}}, 400, "question_too_long"),
    *[("get", "/api/ask", {"query_string": {"q": "hi", "top_k": top_k}}, 400, "invalid_top_k")
      for top_k in ("", "abc", "5.0", " 5", "0x5", "1e1", "５", "5_0", "0", "-3", "51", "9" * 400)],
]


@pytest.mark.parametrize("method, path, kwargs, status, code", BAD_REQUESTS)
def test_client_mistakes_get_json_errors(client: FlaskClient, method: str, path: str, kwargs: dict, status: int,
                                         code: str) -> None:
    response = getattr(client, method)(path, **kwargs)
    assert_error(response, status, code)
    if status == 405:
        assert response.headers["Allow"]


def test_service_still_answers_after_every_mistake(app: Flask) -> None:
    client = app.test_client()
    for method, path, kwargs, status, _ in BAD_REQUESTS:
        assert getattr(client, method)(path, **kwargs).status_code == status
    assert ask(client, ZH_HANT_QUESTION).status_code == 200
    assert client.get("/api/ask", query_string={"q": EN_QUESTION}).status_code == 200


# --- the OpenAPI document against real responses -------------------------------------------------------------

def check(value: object, schema: dict, spec: dict, where: str = "$") -> None:
    """A small JSON Schema checker for the keywords service/openapi.py uses."""
    if "$ref" in schema:
        return check(value, spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]], spec, where)
    if "oneOf" in schema:
        matches = sum(_matches(value, option, spec) for option in schema["oneOf"])
        assert matches == 1, f"{where}: {value!r} matches {matches} of oneOf"
        return
    types = {"object": dict, "array": list, "string": str, "number": (int, float), "integer": int,
             "null": type(None), "boolean": bool}
    allowed = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    assert any(isinstance(value, types[t]) and not (isinstance(value, bool) and t in ("integer", "number"))
               for t in allowed), f"{where}: {value!r} is not {allowed}"
    assert "enum" not in schema or value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    assert "pattern" not in schema or re.search(schema["pattern"], value), f"{where}: {value!r}"
    if isinstance(value, (int, float)):
        assert schema.get("minimum", value) <= value <= schema.get("maximum", value), f"{where}: {value}"
    if isinstance(value, str):
        assert schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)), where
    if isinstance(value, list):
        assert len(value) <= schema.get("maxItems", len(value)), where
        for i, item in enumerate(value):
            check(item, schema["items"], spec, f"{where}[{i}]")
    if isinstance(value, dict):
        assert set(schema.get("required", [])) <= set(value), f"{where}: missing {schema['required']}"
        properties = schema.get("properties", {})
        assert schema.get("additionalProperties", True) or set(value) <= set(properties), where
        for key in set(value) & set(properties):
            check(value[key], properties[key], spec, f"{where}.{key}")


def _matches(value: object, schema: dict, spec: dict) -> bool:
    try:
        check(value, schema, spec)
    except AssertionError:
        return False
    return True


def response_schema(spec: dict, path: str, method: str, status: int) -> dict:
    return spec["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]


def test_openapi_describes_real_responses(client: FlaskClient, app: Flask) -> None:
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    schemas = spec["components"]["schemas"]
    assert (schemas["TopK"]["minimum"], schemas["TopK"]["maximum"]) == (1, 50)
    assert (schemas["Question"]["minLength"], schemas["Question"]["maxLength"]) == (1, 1000)
    routes = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule) for rule in app.url_map.iter_rules()}
    assert routes - {"/static/{filename}"} == set(spec["paths"])

    answer = ask(client, ZH_HANT_QUESTION)
    doc_id = answer.json["passages"][0]["doc_id"]
    samples = [
        ("/api/ask", "post", answer),
        ("/api/ask", "get", client.get("/api/ask", query_string={"q": EN_QUESTION, "top_k": 50})),
        ("/api/ask", "post", ask(client, "hi", top_k=0)),
        ("/api/ask", "post", client.post("/api/ask", data="x")),
        ("/api/ask", "post", client.post("/api/ask", data="{", content_type=JSON)),
        ("/api/documents/{doc_id}", "get", client.get(f"/api/documents/{doc_id}")),
        ("/api/documents/{doc_id}", "get", client.get("/api/documents/none.txt")),
        ("/api/documents/{doc_id}", "get", client.get("/api/documents/../x")),
        ("/healthz", "get", client.get("/healthz")),
        ("/readyz", "get", client.get("/readyz")),
        ("/readyz", "get", create_app({"LOAD_INDEX": False}).test_client().get("/readyz")),
        ("/api/openapi.json", "get", client.get("/api/openapi.json")),
    ]
    for path, method, response in samples:
        check(response.json, response_schema(spec, path, method, response.status_code), spec, f"{method} {path}")
