"""What the Milvus store tests share: a real server per module, a small corpus of every kind of document, and a
build of it written the way indexer/build.py writes (seal, then publish with the store's counts)."""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexer.process import ProcessedDocument, process
from stores.contract import FORMAT_VERSION, DocumentMeta
from stores.milvus import MilvusLocation
from stores.milvus_server import MilvusServer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DIM = 8
MODEL = "test-model"
ZH = ("微软与OpenAI的协议价值380亿美元。数据中心的建设需要大量资金和电力。纳德拉表示双方的合作将继续下去。"
      "英伟达的芯片供不应求，云计算厂商纷纷自研芯片。") * 6
EN = ("OpenAI signed a cloud contract with Microsoft. The data center needs a lot of power. "
      "Satya Nadella said the partnership would continue for years. ") * 6
ODD_FOLDER = 'odd "dir" \\ x'  # quotes and a backslash must survive filter expressions
ODD = f'{ODD_FOLDER}/say "hi".txt'
_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServer]:
    with MilvusServer(tmp_path_factory.mktemp("milvus") / "data") as running:
        yield running


@pytest.fixture
def location(server: MilvusServer) -> MilvusLocation:
    return MilvusLocation(server.uri, f"passages_{next(_names)}", timeout=5.0)


def vectors_for(document: ProcessedDocument, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(len(document.passages), DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def corpus() -> dict[str, ProcessedDocument]:
    return {
        "notes/zh/微软.txt": process(ZH.encode(), "text"),
        "notes/en.txt": process(EN.encode(), "text"),
        "notes0.txt": process("数据中心之外的笔记。".encode(), "text"),  # sorts right after the notes/ folder
        "notes-x.md": process(b"# Elsewhere\n\nA note beside the folder, not in it.", "markdown"),
        "pdf/zh_hans.pdf": process((FIXTURES / "pdf" / "zh_hans.pdf").read_bytes(), "pdf"),
        ODD: process("一个名字奇怪的文件。".encode(), "text"),
    }


def manifest(build_id: str, model: str = MODEL, dim: int = DIM, **extra) -> dict:
    return {"format_version": FORMAT_VERSION, "build_id": build_id, "created": "2026-01-01T00:00:00Z",
            "model": {"id": model, "dim": dim}, "counts": {"skipped": 0}, **extra}


def publish(writer, manifest: dict) -> None:
    """As the build does: the counts of what the store holds go into the manifest it publishes."""
    sealed = writer.seal()
    writer.publish({**manifest, "counts": {**manifest["counts"], "passages": sealed["passages"]},
                    "mean_vector": sealed["mean_vector"]})


def build(location: MilvusLocation, documents: dict[str, ProcessedDocument], build_id: str = "b1",
          version: str = "v1", model: str = MODEL) -> dict[str, np.ndarray]:
    writer = location.writer(build_id, model)
    writer.stored()
    vectors = {}
    for seed, (doc_id, document) in enumerate(sorted(documents.items())):
        vectors[doc_id] = vectors_for(document, seed)
        writer.write(DocumentMeta(doc_id, f"sha-{doc_id}", f"title of {doc_id}"), document, vectors[doc_id], version)
    publish(writer, manifest(build_id, model, counts={"skipped": 0, "documents": len(documents)}))
    writer.close()
    return vectors


@pytest.fixture(scope="module")
def built(server: MilvusServer) -> tuple[MilvusLocation, dict[str, ProcessedDocument], dict[str, np.ndarray]]:
    location = MilvusLocation(server.uri, "built", timeout=5.0)
    documents = corpus()
    return location, documents, build(location, documents)


