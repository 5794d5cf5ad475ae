"""The real server (the `server` fixture in conftest.py): gunicorn with service/gunicorn.conf.py, over HTTP on a
loopback port."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def request(url: str, body: dict | None = None) -> tuple[int, str, dict]:
    """(status, content type, JSON body) for a GET, or a JSON POST when `body` is given; never raises on 4xx/5xx."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, response.headers["Content-Type"], json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], json.loads(error.read())


def test_ready_and_answers_over_http(server: str) -> None:
    status, _, ready = request(f"{server}/readyz")
    assert status == 200 and ready["status"] == "ready" and ready["passages"] > 0
    status, content_type, body = request(f"{server}/api/ask", {"question": "OpenAI與AWS的協議價值多少？", "top_k": 3})
    assert status == 200 and content_type.startswith("application/json")
    assert body["query_language"] == "zh-Hant" and 1 <= len(body["passages"]) <= 3


def test_concurrent_questions_are_all_answered(server: str) -> None:
    questions = ["微软为什么要拯救OpenAI？", "How much is the AWS deal worth?", "OpenAI與AWS的協議價值多少？",
                 "英伟达 AI 芯片", "Microsoft Azure exclusivity", "Meta Threads 用户"] * 2
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda q: request(f"{server}/api/ask", {"question": q})[0], questions))
    assert statuses == [200] * len(questions)


def test_errors_are_json_over_http(server: str) -> None:
    status, content_type, body = request(f"{server}/no/such/route")
    assert status == 404 and content_type.startswith("application/json")
    assert body["error"]["code"] == "not_found"
    status, _, body = request(f"{server}/api/ask", {"question": "hi", "top_k": 0})
    assert status == 400 and body["error"]["code"] == "invalid_top_k"
