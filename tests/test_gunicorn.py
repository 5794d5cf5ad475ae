"""The real server: gunicorn with service/gunicorn.conf.py, over HTTP on a loopback port."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
READY_WITHIN_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(url: str, body: dict | None = None) -> tuple[int, str, dict]:
    """(status, content type, JSON body) for a GET, or a JSON POST when `body` is given; never raises on 4xx/5xx."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, response.headers["Content-Type"], json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], json.loads(error.read())


def wait_until_ready(base: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.returncode}:\n{log.read_text()}")
        try:
            if request(f"{base}/readyz")[0] == 200:
                return
        except OSError:  # not listening yet
            pass
        time.sleep(0.5)
    pytest.fail(f"gunicorn was not ready within {READY_WITHIN_SECONDS} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = {**os.environ, "QA_INDEX": str(seed_index), "HOST": "127.0.0.1", "PORT": str(port), "THREADS": "4"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(GUNICORN), "-c", "service/gunicorn.conf.py", "service:create_app()"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, process, log)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
