"""Shared, expensive fixtures: the embedding model and an index of corpus/ are built once per session."""
from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from indexer.build import build_index
from indexer.embedding import Embedder, load_embedder
from service import create_app

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return load_embedder(None)


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
