"""The optional API key (QA_API_KEY) and CORS (QA_CORS_ORIGINS): both off by default."""
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from service import create_app

KEY = "s3cret-ключ"  # not ASCII: compare_digest must get bytes
ASK = "/api/ask?q=OpenAI"
DOCUMENT = "/api/documents/none.txt"
ORIGIN = "https://app.example"


@pytest.fixture(scope="module")
def guarded(seed_index: Path) -> FlaskClient:
    return create_app({"QA_INDEX": str(seed_index), "QA_API_KEY": KEY, "TESTING": True}).test_client()


def cors_client(origins: str) -> FlaskClient:
    return create_app({"LOAD_INDEX": False, "QA_CORS_ORIGINS": origins, "TESTING": True}).test_client()


def assert_unauthorized(response) -> None:
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Basic {KEY}"}, {"X-API-Key": KEY[:-1]}])
def test_requests_without_the_right_key_are_refused(guarded: FlaskClient, headers: dict) -> None:
    assert_unauthorized(guarded.get(ASK, headers=headers))
    assert_unauthorized(guarded.post("/api/ask", json={"question": "OpenAI"}, headers=headers))
    assert_unauthorized(guarded.get(DOCUMENT, headers=headers))
    assert_unauthorized(guarded.get("/documents/none.txt", headers=headers))


@pytest.mark.parametrize("headers", [{"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"},
                                     {"Authorization": f"bearer {KEY}"}])
def test_the_right_key_in_either_header_is_let_through(guarded: FlaskClient, headers: dict) -> None:
    encoded = {name: value.encode().decode("latin-1") for name, value in headers.items()}  # as a client sends it
    assert guarded.get("/api/ask?q=OpenAI", headers=encoded).status_code == 200
    assert guarded.get(DOCUMENT, headers=encoded).status_code == 404


def test_health_checks_and_static_files_stay_open(guarded: FlaskClient) -> None:
    assert guarded.get("/healthz").status_code == 200
    assert guarded.get("/readyz").status_code == 200
    assert guarded.get("/static/app.js").status_code in (200, 404)  # never 401, whatever the file names


def test_the_openapi_document_says_when_a_key_is_needed(guarded: FlaskClient, client: FlaskClient) -> None:
    spec = guarded.get("/api/openapi.json", headers={"X-API-Key": KEY.encode().decode("latin-1")}).json
    assert spec["security"] == [{"bearer": []}, {"apiKey": []}]
    assert "401" in spec["paths"]["/api/ask"]["post"]["responses"]
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    assert "unauthorized" in spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    assert "security" not in client.get("/api/openapi.json").json  # no key: nothing is required


def test_cors_is_off_by_default(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"Origin": ORIGIN})
    assert not [name for name in response.headers.keys() if name.startswith("Access-Control-")]
    preflight = client.options("/api/ask", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert not [name for name in preflight.headers.keys() if name.startswith("Access-Control-")]


@pytest.mark.parametrize("origins, expected", [(f"https://other.example, {ORIGIN}", ORIGIN), ("*", "*")])
def test_an_allowed_origin_gets_cors_headers_and_a_preflight_answer(origins: str, expected: str) -> None:
    client = cors_client(origins)
    response = client.get("/api/ask?q=x", headers={"Origin": ORIGIN})
    assert response.status_code == 503  # no index loaded; the error is readable cross-origin too
    assert response.headers["Access-Control-Allow-Origin"] == expected
    preflight = client.options("/api/ask", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
    })
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == expected
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET, POST, DELETE"
    assert preflight.headers["Access-Control-Allow-Headers"] == "Content-Type, Authorization, X-API-Key, X-Admin-Key"


def test_a_preflight_needs_no_key(seed_index: Path) -> None:
    config = {"LOAD_INDEX": False, "QA_API_KEY": KEY, "QA_CORS_ORIGINS": ORIGIN, "TESTING": True}
    client = create_app(config).test_client()
    preflight = client.options("/api/ask", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204
    assert_unauthorized(client.get(ASK, headers={"Origin": ORIGIN}))
    assert client.get(ASK, headers={"Origin": ORIGIN}).headers["Access-Control-Allow-Origin"] == ORIGIN


def test_a_disallowed_origin_gets_no_cors_headers() -> None:
    client = cors_client(ORIGIN)
    response = client.get("/api/ask?q=x", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = client.options("/api/ask", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
    })
    assert not [name for name in preflight.headers.keys() if name.startswith("Access-Control-")]
