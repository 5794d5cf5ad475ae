"""/metrics (Prometheus text format, every gunicorn worker counted), request ids and the JSON request log."""
from __future__ import annotations

import json
import logging
import re
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from service import create_app
from service.requests_log import JsonFormatter
from tests.conftest import serving

QUESTION = "OpenAI與AWS的協議價值多少？"


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and labels.items() <= s.labels.items())


def scrape(client: FlaskClient) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return response.get_data(as_text=True)


def test_asks_are_counted_and_timed(client: FlaskClient) -> None:
    before, asks = scrape(client), 4
    for _ in range(asks):
        assert client.post("/api/ask", json={"question": QUESTION}).status_code == 200
    assert client.get("/api/ask").status_code == 400
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("qa_requests_total", route="/api/ask", method="POST", status="200") == asks
    assert grew("qa_requests_total", route="/api/ask", method="GET", status="400") == 1
    assert grew("qa_ask_seconds_count", phase="total") == asks
    assert grew("qa_ask_seconds_count", phase="encode") == asks
    assert grew("qa_encode_batch_questions_sum") == asks  # one at a time: batches of one
    assert sample(after, "qa_encode_queue_depth") == 0
    assert sample(after, "qa_index_ready") == 1 and sample(after, "qa_index_passages") > 0
    assert sample(after, "qa_index_documents") > 0 and sample(after, "qa_index_age_seconds") >= 0
    assert sample(after, "qa_index_build_passages", source="embedded") >= 0
    info = [s for f in text_string_to_metric_families(after) for s in f.samples if s.name == "qa_index_info"]
    assert len(info) == 1 and info[0].labels["build_id"] == client.get("/readyz").json["index"]


def test_metrics_need_the_read_key_when_one_is_set() -> None:
    client = create_app({"LOAD_INDEX": False, "QA_API_KEY": "k", "TESTING": True}).test_client()
    assert client.get("/metrics").status_code == 401
    text = client.get("/metrics", headers={"X-API-Key": "k"}).get_data(as_text=True)
    assert sample(text, "qa_index_ready") == 0


# --- request ids and the log --------------------------------------------------------------------------------

def request_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "service.requests"]


def test_a_request_id_is_taken_returned_and_on_every_log_line(client: FlaskClient,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        response = client.post("/api/ask", json={"question": QUESTION}, headers={"X-Request-Id": "abc"})
    assert response.status_code == 200 and response.headers["X-Request-Id"] == "abc"
    assert caplog.records and {r.request_id for r in caplog.records} == {"abc"}
    [line] = request_records(caplog)
    fields = line.fields
    assert fields["request_id"] == "abc" and fields["route"] == "/api/ask" and fields["status"] == 200
    assert fields["language"] == "zh-Hant" and fields["hits"] == len(response.json["passages"])
    assert fields["build"] == client.get("/readyz").json["index"] and fields["ms"] >= 0
    assert "question" not in fields and QUESTION not in JsonFormatter().format(line)


def test_a_failing_request_has_its_id_in_the_body_and_every_log_line(
        app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    retriever = app.extensions["qa_state"].current.retriever

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the encoder broke")

    monkeypatch.setattr(retriever, "ask", broken)
    with caplog.at_level(logging.INFO):
        response = client.post("/api/ask", json={"question": QUESTION})
    assert response.status_code == 500
    request_id = response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # none offered: a new one
    assert response.json["error"]["request_id"] == request_id
    assert {r.levelname for r in caplog.records} == {"ERROR", "INFO"}  # the traceback and the request line
    assert {r.request_id for r in caplog.records} == {request_id}
    formatted = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    assert all(line["request_id"] == request_id for line in formatted)
    assert "RuntimeError: the encoder broke" in formatted[0]["exception"]
    assert formatted[-1]["status"] == 500


@pytest.mark.parametrize("offered", ["x" * 129, "tab\tinside", "é"])
def test_an_unusable_request_id_is_replaced(client: FlaskClient, offered: str) -> None:
    response = client.get("/no/such/route", headers={"X-Request-Id": offered})
    assert response.status_code == 404
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])
    assert response.json["error"]["request_id"] == response.headers["X-Request-Id"]


def test_questions_are_logged_only_when_asked_for(app: Flask, client: FlaskClient,
                                                  caplog: pytest.LogCaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "QA_LOG_QUESTIONS", True)
    with caplog.at_level(logging.INFO):
        client.get("/api/ask", query_string={"q": QUESTION})
    [line] = request_records(caplog)
    assert json.loads(JsonFormatter().format(line))["question"] == QUESTION


# --- a real gunicorn with two workers -----------------------------------------------------------------------

def ask_over_http(base: str, question: str) -> int:
    body = json.dumps({"question": question}).encode()
    request = urllib.request.Request(f"{base}/api/ask", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status


def test_two_workers_add_up(seed_index: Path, tmp_path: Path) -> None:
    log = tmp_path / "gunicorn.log"
    with serving(seed_index, log, WEB_CONCURRENCY="2", QA_MAX_WAITING="16") as base:  # every question answered
        sent, pids = 0, set()
        while len(pids) < 2 and sent < 400:  # until both workers have answered some
            with ThreadPoolExecutor(8) as pool:
                assert set(pool.map(lambda _: ask_over_http(base, QUESTION), range(16))) == {200}
            sent += 16
            lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
            pids = {line["pid"] for line in lines if line.get("route") == "/api/ask"}
        with urllib.request.urlopen(f"{base}/metrics", timeout=60) as response:
            text = response.read().decode()
    assert len(pids) == 2
    assert sample(text, "qa_requests_total", route="/api/ask", method="POST", status="200") == sent
    assert sample(text, "qa_ask_seconds_count", phase="total") == sent
    asked = [line for line in lines if line.get("route") == "/api/ask"]
    assert len(asked) == sent and all(re.fullmatch(r"[0-9a-f]{32}", line["request_id"]) for line in asked)
