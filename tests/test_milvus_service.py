"""The service over Milvus, end to end: built by the CLI with Ray, served by `python -m service`, and a Milvus that
goes away and comes back (503 with the reason, never a 500 or a hang, then answers again)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from conftest import CORPUS, ROOT, free_port, seed_recall_at_5, stop
from indexer.build import build_index
from service import create_app
from stores.milvus import MilvusLocation
from stores.milvus_server import MilvusServer

STORE_TIMEOUT_SECONDS = 10  # an answer about an outage comes within the store's bounded calls, not after a hang


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def _ask_over_http(base: str, question: str) -> set[str]:
    query = urllib.parse.urlencode({"q": question, "top_k": 5})
    with urllib.request.urlopen(f"{base}/api/ask?{query}", timeout=60) as response:
        return {passage["doc_id"] for passage in json.load(response)["passages"]}


def _wait_ready(base: str, process: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else process.returncode
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=10):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail("python -m service did not become ready")


def test_a_ray_build_into_milvus_serves_the_seed_questions_as_well_as_the_embedded_store(
        tmp_path, milvus_server, app):
    collection = "cli_ray_seed"
    built = _run("indexer", "build", "--corpus", str(CORPUS), "--index", str(tmp_path / "index"), "--quiet",
                 "--milvus-uri", milvus_server.uri, "--collection", collection, "--ray", "local")
    assert built.returncode == 0, built.stdout + built.stderr
    assert "Traceback" not in built.stderr
    manifest = MilvusLocation(milvus_server.uri, collection).manifest()
    assert manifest["work"]["passages_embedded"] == manifest["counts"]["passages"] > 0  # all encoded on Ray

    port = free_port()
    service = subprocess.Popen([sys.executable, "-m", "service", "--index", str(tmp_path / "index"), "--port", str(port),
                                "--milvus-uri", milvus_server.uri, "--collection", collection],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, service)
        milvus = seed_recall_at_5(lambda question: _ask_over_http(base, question))
    finally:
        stop(service)
    retriever = app.extensions["qa_state"].current.retriever  # the embedded store's, over the same corpus
    embedded = seed_recall_at_5(lambda question: {h.doc_id for h in retriever.ask(question, 5).hits})
    assert embedded > 0.8 and milvus >= embedded - 0.03, (milvus, embedded)


@pytest.fixture
def own_milvus(tmp_path) -> MilvusServer:
    """A server of this test's own: it is stopped and started again."""
    with MilvusServer(tmp_path / "milvus") as server:
        yield server


def _timed(client, method: str, path: str, **kwargs):
    started = time.monotonic()
    response = getattr(client, method)(path, **kwargs)
    assert time.monotonic() - started < STORE_TIMEOUT_SECONDS, f"{path} took too long"
    return response


def test_a_milvus_outage_is_503_with_the_reason_and_the_service_recovers(tmp_path, own_milvus, embedder):
    small = tmp_path / "corpus"
    small.mkdir()
    (small / "tea.txt").write_text("Longjing tea grows near the West Lake in Hangzhou and is pan-fired by hand.",
                                   encoding="utf-8")
    build_index(small, tmp_path / "index", embedder, progress=False,
                location=MilvusLocation(own_milvus.uri, "outage"))
    app = create_app({"QA_INDEX": str(tmp_path / "index"), "QA_MILVUS_URI": own_milvus.uri, "QA_COLLECTION": "outage",
                      "QA_RELOAD_SECONDS": 0.2, "TESTING": True})
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    assert client.post("/api/ask", json={"question": "Where does Longjing tea grow?"}).status_code == 200

    own_milvus.stop()
    ready = _timed(client, "get", "/readyz")
    asked = _timed(client, "post", "/api/ask", json={"question": "Where does Longjing tea grow?"})
    for response in (ready, asked):
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "store_unavailable"
        assert own_milvus.uri.removeprefix("http://") in response.get_json()["error"]["message"]
        assert response.headers["Retry-After"]

    own_milvus.start()
    hits = client.post("/api/ask", json={"question": "Where does Longjing tea grow?"}).get_json()["passages"]
    assert hits[0]["doc_id"] == "tea.txt"
    assert client.get("/readyz").status_code == 200


def test_a_service_started_while_milvus_is_down_serves_once_it_is_up(tmp_path, own_milvus, embedder):
    small = tmp_path / "corpus"
    small.mkdir()
    (small / "茶.txt").write_text("龙井茶产于杭州西湖一带，是中国著名的绿茶。", encoding="utf-8")
    build_index(small, tmp_path / "index", embedder, progress=False, location=MilvusLocation(own_milvus.uri, "late"))
    own_milvus.stop()
    app = create_app({"QA_INDEX": str(tmp_path / "index"), "QA_MILVUS_URI": own_milvus.uri, "QA_COLLECTION": "late",
                      "QA_RELOAD_SECONDS": 0.2, "TESTING": True})
    client = app.test_client()
    refused = _timed(client, "get", "/readyz")
    assert refused.status_code == 503 and "milvus" in refused.get_json()["error"]["message"].lower()
    own_milvus.start()
    deadline = time.monotonic() + 60
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").get_json()
        time.sleep(0.3)
    assert client.get("/api/ask?q=龙井茶产于哪里").get_json()["passages"][0]["doc_id"] == "茶.txt"
