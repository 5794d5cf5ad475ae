"""The ONNX exports `make model` writes (fp32: the service's question encoder by default; int8: passages where the
CPU has VNNI but no bf16, or QA_BACKEND=onnx-int8), against the torch model they came from."""
from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from stores.embedded import EmbeddedLocation
from indexer.build import build_index
from indexer.embedding import DEFAULT_MODEL, Encoder, configured_backend, load_embedder, model_id, question_backend
from indexer.onnx_backend import OnnxEmbedder, load_onnx_embedder
from indexer.onnx_backend import onnx_path
from indexer.onnx_export import check_free_space, fp32_products, is_exported
from service.retrieval import Retriever

ROOT = Path(__file__).resolve().parent.parent
# int8 passages against torch's (measured, AMD EPYC with VNNI: dataset paragraphs mean .9993, lowest .9986); the
# thresholds leave room for other CPUs' int8 kernels.
MIN_COSINE = 0.99
MEAN_COSINE = 0.995
README_QUESTIONS = [("OpenAI與AWS的協議價值多少？", "002_88511f47bc2856da.txt"),
                    ("微软自研的AI芯片叫什么？", "004_e0dd1fc4cceb475f.txt"),
                    ("How much will OpenAI spend on servers by 2030?", "003_69a75a54e2ab49f8.txt")]


def seed_questions() -> list[dict[str, str]]:
    lines = (ROOT / "evals" / "seed_questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def int8() -> Encoder:
    return load_embedder(None, "onnx-int8")


def test_an_export_without_room_for_its_files_is_refused_before_it_writes(tmp_path: Path) -> None:
    model, folder = tmp_path / "model", tmp_path / "model" / "onnx"
    folder.mkdir(parents=True)
    weights = model / "model.safetensors"
    weights.write_bytes(b"0" * 1024)
    check_free_space(model, folder)
    os.truncate(weights, 2**43)  # sparse: 8 TiB the disk does not hold
    with pytest.raises(OSError, match="the ONNX export needs .* GiB free in"):
        check_free_space(model, folder)
    assert not any(folder.iterdir())


def test_make_model_exported_the_int8_model_and_it_is_current():
    assert is_exported(DEFAULT_MODEL)


def test_the_model_id_names_no_backend(int8, embedder):
    assert int8.model_id == embedder.model_id == model_id(str(DEFAULT_MODEL)) == "multilingual-e5-small"
    assert int8.dim == embedder.dim and int8.identity != embedder.identity  # the embedding cache keeps them apart


def test_unknown_backend_is_refused(monkeypatch):
    monkeypatch.setenv("QA_BACKEND", "tensorrt")
    with pytest.raises(ValueError, match="unknown backend"):
        configured_backend()


def test_int8_passages_agree_with_torch_and_its_questions_are_fp32_onnx_ones(int8, embedder):
    passages = [p.read_text(encoding="utf-8")[:600] for p in sorted((ROOT / "corpus").glob("*.txt"))]
    ours, theirs = int8.passages(passages, 8), embedder.passages(passages, 8)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() > MIN_COSINE and cosines.mean() > MEAN_COSINE and cosines.max() < 1 - 1e-6, cosines
    questions = [q["question"] for q in seed_questions()][:24]
    np.testing.assert_array_equal(int8.queries(questions, 8), load_embedder(None, "onnx").queries(questions, 8))


def test_the_products_after_gelu_stay_fp32():
    import onnx

    names = fp32_products(onnx.load(str(onnx_path(DEFAULT_MODEL, "onnx"))))
    assert names == [f"/bert/encoder/layer.{i}/output/dense/MatMul" for i in range(12)]
    int8_graph = onnx.load(str(onnx_path(DEFAULT_MODEL, "onnx-int8"))).graph
    assert {node.name for node in int8_graph.node if node.op_type == "MatMul"} == set(names)
    assert sum(node.op_type == "MatMulInteger" for node in int8_graph.node) == 36 - 12


def test_batching_changes_passage_vectors_only_slightly(int8):
    """Activations are quantized per batch (dynamic int8), so a text's vector depends a little on its batch."""
    texts = ["微软自研的AI芯片由台积电代工。", "OpenAI will spend on servers by 2030.", "短"]
    together = int8.passages(texts, 3)
    alone = np.stack([int8.passages([t], 1)[0] for t in texts])
    assert (together * alone).sum(axis=1).min() > 0.99


def test_an_int8_index_records_its_backend_and_answers_fp32_questions(tmp_path, int8, embedder):
    root = tmp_path / "index"
    built = build_index(ROOT / "corpus", root, int8, progress=False).manifest
    assert built["model"]["passage_backend"] == "onnx-int8"
    retriever = Retriever(EmbeddedLocation(root).open(embedder.model_id, embedder.dim), embedder)
    for question, doc_id in README_QUESTIONS:
        assert retriever.ask(question, 5).hits[0].doc_id == doc_id, question


# fp32 ONNX runs the same weights: measured min cosine 0.9999999 on the seed questions.
FP32_MIN_COSINE = 0.9999


def test_fp32_onnx_vectors_equal_torch_vectors(embedder):
    fp32 = load_embedder(None, "onnx")
    assert fp32.model_id == embedder.model_id  # interchangeable: a torch-built index serves onnx questions
    questions = [q["question"] for q in seed_questions()]
    passages = [p.read_text(encoding="utf-8")[:1500] for p in sorted((ROOT / "corpus").glob("*.txt"))]
    for ours, theirs in ((fp32.queries(questions, 8), embedder.queries(questions, 8)),
                         (fp32.passages(passages, 4), embedder.passages(passages, 4))):
        assert (ours * theirs).sum(axis=1).min() > FP32_MIN_COSINE


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_calls_from_several_threads_at_once_get_the_vectors_of_calls_made_one_at_a_time(backend, embedder):
    """The service encodes on several threads (service/batching.py's lanes): each encoder is safe to share."""
    encoder = embedder if backend == "torch" else load_embedder(None, backend)
    questions = [q["question"] for q in seed_questions()][:12]
    alone = [encoder.queries([q])[0] for q in questions]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda q: encoder.queries([q])[0], questions * 4))
    np.testing.assert_allclose(np.stack(together), np.stack(alone * 4), atol=1e-5)


class _Noted:
    """A real session that notes each call; its first call waits inside until `release` is set."""

    def __init__(self, session: object, name: str, calls: list[str], inside: threading.Event,
                 release: threading.Event) -> None:
        self.session, self.name, self.calls, self.inside, self.release = session, name, calls, inside, release

    def run(self, *args: object) -> list[np.ndarray]:
        self.calls.append(self.name)
        if not self.inside.is_set():
            self.inside.set()
            self.release.wait(30)
        return self.session.run(*args)


def test_a_call_made_while_another_runs_gets_the_one_thread_session_and_the_same_vectors():
    encoder = load_onnx_embedder(DEFAULT_MODEL, "e5", "onnx", threads=2, side_by_side=True)
    questions = ["微软自研的AI芯片叫什么？", "How much will OpenAI spend on servers by 2030?"]
    alone = encoder.queries(questions[1:])
    calls: list[str] = []
    inside, release = threading.Event(), threading.Event()
    encoder.session = _Noted(encoder.session, "every core", calls, inside, release)
    encoder.side_session = _Noted(encoder.side_session, "one core", calls, inside, release)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(encoder.queries, questions[:1])
        assert inside.wait(30)
        beside = encoder.queries(questions[1:])
        release.set()
        first.result()
    encoder.queries(questions[1:])
    assert calls == ["every core", "one core", "every core"]
    np.testing.assert_allclose(beside, alone, atol=1e-6)


def test_the_service_encodes_questions_on_onnx_unless_configured(app, monkeypatch, tmp_path):
    assert isinstance(app.extensions["qa_state"].current.retriever.embedder, OnnxEmbedder)
    assert question_backend() == "onnx"
    monkeypatch.setenv("QA_BACKEND", "torch")
    assert question_backend() == "torch"
    monkeypatch.setenv("QA_BACKEND", "onnx-int8")  # int8 passages, fp32 questions: the service loads no int8 model
    assert question_backend() == "onnx"
    monkeypatch.delenv("QA_BACKEND")
    unexported = tmp_path / "another-model"  # a QA_MODEL folder `make model` did not export: torch
    unexported.mkdir()
    for part in DEFAULT_MODEL.iterdir():
        if part.name != "onnx":
            (unexported / part.name).symlink_to(part)
    assert question_backend(str(unexported)) == "torch"
