"""Shared, expensive fixtures: the embedding model, an index of corpus/ and a gunicorn serving it are set up
once per session."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from indexer.build import build_index
from indexer.embedding import FP32_BACKEND, Embedder, load_embedder
from service import create_app
from service.retrieval import Retriever
from stores.embedded import EmbeddedLocation
from stores.index_dir import open_index

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
GUNICORN = Path(sys.executable).parent / "gunicorn"
READY_WITHIN_SECONDS = 120


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """fp32 torch on every CPU, so the tests' tolerances hold wherever they run; bf16, which a build picks on a
    CPU with bf16 instructions, has its own tests (test_bf16.py), and every CLI build the tests start runs it there."""
    return load_embedder(None, FP32_BACKEND)


def index_passages(root: Path, encoder: Embedder) -> tuple[list[tuple], np.ndarray]:
    """Every passage of the index at `root` as (doc_id, start, end, text, folded), sorted, and their vectors (a build
    that starts from the last may number the passages in another order than a build from nothing)."""
    opened = open_index(root, encoder.model_id, encoder.dim)
    stored = opened.store.passages(list(range(opened.store.passage_count)))
    rows = [(p.doc_id, p.start, p.end, p.text, p.folded) for _, p in sorted(stored.items())]
    order = sorted(range(len(rows)), key=rows.__getitem__)
    return [rows[i] for i in order], opened.vectors.reconstruct_n(0, opened.vectors.ntotal)[order]


def index_answers(root: Path, encoder: Embedder, questions: list[str]) -> list[list[tuple]]:
    """Each question's top 5 hits from the index at `root`, as (doc_id, start, end)."""
    retriever = Retriever(EmbeddedLocation(root).open(encoder.model_id, encoder.dim), encoder)
    return [[(h.doc_id, h.start, h.end) for h in retriever.ask(question, 5).hits] for question in questions]


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """The root of a real index (root/current -> builds/<id>) of the project's corpus/."""
    root = tmp_path_factory.mktemp("seed-index")
    build_index(CORPUS, root, embedder, progress=False)
    return root


@pytest.fixture(scope="session")
def app(seed_index: Path) -> Flask:
    app = create_app({"QA_INDEX": str(seed_index), "TESTING": True})
    assert app.extensions["qa_state"].current.retriever is not None, app.extensions["qa_state"].current.reason
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _is_ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=10) as response:
            return response.status == 200
    except OSError:  # not listening yet, or 503 (HTTPError is an OSError)
        return False


def wait_until_ready(base: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.returncode}:\n{log.read_text()}")
        if _is_ready(base):
            return
        time.sleep(0.5)
    pytest.fail(f"gunicorn was not ready within {READY_WITHIN_SECONDS} s:\n{log.read_text()}")


@contextmanager
def serving(index_root: Path, log: Path, **env: str) -> Iterator[str]:
    """gunicorn with service/gunicorn.conf.py serving `index_root` on a free loopback port, until the block ends;
    yields its base URL (http://127.0.0.1:PORT). `env`: more environment variables for it."""
    port = free_port()
    env = {**os.environ, "QA_INDEX": str(index_root), "HOST": "127.0.0.1", "PORT": str(port), "THREADS": "4", **env}
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
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """Terminate a server process; kill it if it has not ended within 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def server(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real server serving the seed index; its log is in the session's temporary folder."""
    # 8 questions at once are all answered here; refusing beyond the bound is tested in test_overload.py
    with serving(seed_index, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log", QA_MAX_WAITING="16") as base:
        yield base


def process_corpus(root: Path, max_bytes: int | None = None) -> tuple[dict, dict[str, str]]:
    """What a build makes of each file of `root`, in this process: ({doc_id: ProcessedDocument}, {path: reason})."""
    from extract import ExtractionError
    from indexer.documents import CorpusReport, max_file_bytes, read_corpus
    from indexer.process import process

    report, documents = CorpusReport(), {}
    for file, data in read_corpus(root, report, max_bytes or max_file_bytes()):
        try:
            documents[file.doc_id] = process(data, file.format)
        except ExtractionError as error:
            report.skip(file.doc_id, str(error))
    return documents, {s.path: s.reason for s in report.skipped}


def seed_recall_at_5(ask) -> float:
    """The share of the seed questions (every script) whose top 5 from `ask(question) -> doc ids` has a gold document."""
    from evals.datasets import seed_rows

    queries = [q for row in seed_rows() for q in row.queries]
    return sum(bool(ask(q.text) & q.gold) for q in queries) / len(queries)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A real Milvus (milvus-lite's server) on a free loopback port, reached over HTTP as a cluster would be."""
    from stores.milvus_server import MilvusServer

    with MilvusServer(tmp_path_factory.mktemp("milvus")) as server:
        yield server
