"""Requests generated from the served OpenAPI document against the app (WSGI, the session's index): no 5xx,
and every response matches the schema and content type the document promises.

(schemathesis.pytest.from_fixture does not work with this pytest, so each operation's strategy is driven
by hypothesis directly.)
"""
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from service import openapi

MAX_EXAMPLES = 25  # per operation: keeps the file well under a minute
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
OPERATIONS = [(path, method) for path, item in openapi.document(1)["paths"].items() for method in item]


@pytest.fixture(scope="module")
def served_schema(app: Flask) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


@pytest.mark.parametrize("path, method", OPERATIONS)
def test_responses_keep_the_documented_contract(served_schema: schemathesis.BaseSchema, path: str, method: str) -> None:
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=served_schema[path][method].as_strategy())
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    call()


def test_an_id_with_a_line_break_reaches_the_views(client: FlaskClient) -> None:
    """Found by schemathesis: `.+` stopped at the line break, so the page route answered the generic JSON 404."""
    page = client.get("/documents/a.txt%0A")
    assert (page.status_code, page.mimetype) == (404, "text/html")
    assert client.get("/api/documents/a.txt%0A").json["error"]["code"] == "not_found"
