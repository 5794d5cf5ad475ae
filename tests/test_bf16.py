"""The torch-bf16 backend: chosen for passages where the CPU has bf16 instructions, its vectors close enough to
fp32's to share an index, recorded in the manifest, kept apart in the embedding cache, and an incremental build
under it equal to a forced one within bf16's rounding."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import ROOT, index_answers, index_passages
from indexer.build import build_index
from indexer.caches import EmbeddingCache
from indexer.embedding import Encoder, configured_backend, load_embedder, passage_backend

SEED = sorted((ROOT / "corpus").glob("*.txt"))
QUESTIONS = [json.loads(line)["question"]
             for line in (ROOT / "evals" / "seed_questions.jsonl").read_text("utf-8").splitlines()]
# bf16 rounds a passage differently in batches of other shapes (measured: elements ≤ 6e-4 apart, cosine ≥ 0.99999)
BF16_MIN_COSINE = 0.9999


@pytest.fixture(scope="module")
def bf16() -> Encoder:
    return load_embedder(None, "torch-bf16")


@pytest.mark.parametrize("flags, expected", [
    ({"avx512_bf16": True, "amx_bf16": False}, "torch-bf16"),
    ({"avx512_bf16": False, "amx_bf16": True}, "torch-bf16"),
    ({"avx512_bf16": False, "amx_bf16": False, "avx512_vnni": True}, "onnx-int8"),  # int8 dot products only
    ({"avx_vnni": True}, "onnx-int8"),
    ({"amx_int8": True}, "onnx-int8"),
    ({"avx2": True, "avx512f": True}, "torch"),
    ({}, "torch"),
])
def test_passages_run_in_bf16_where_the_cpu_has_bf16_instructions_else_int8_where_it_has_vnni(flags, expected):
    assert passage_backend(flags) == expected


def test_qa_backend_overrides_what_the_cpu_would_pick(monkeypatch):
    monkeypatch.setenv("QA_BACKEND", "torch")
    assert configured_backend() == "torch"
    monkeypatch.setenv("QA_BACKEND", "torch-bf16")
    assert configured_backend() == "torch-bf16"
    monkeypatch.delenv("QA_BACKEND")
    assert configured_backend() == passage_backend()


def test_bf16_passages_are_close_to_fp32_and_questions_stay_fp32(bf16, embedder):
    passages = [path.read_text("utf-8")[:1200] for path in SEED]
    cosines = (bf16.passages(passages) * embedder.passages(passages)).sum(axis=1)
    assert cosines.min() > BF16_MIN_COSINE and cosines.max() < 1 - 1e-9  # close, and not fp32 itself
    np.testing.assert_array_equal(bf16.queries(QUESTIONS[:8]), embedder.queries(QUESTIONS[:8]))
    assert bf16.model_id == embedder.model_id and bf16.identity != embedder.identity


def test_a_bf16_build_records_its_backend_caches_apart_from_fp32_and_serves_fp32_questions(tmp_path, bf16, embedder):
    corpus, root = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    shutil.copy(SEED[0], corpus)
    built = build_index(corpus, root, bf16, progress=False).manifest
    assert built["model"]["passage_backend"] == "torch-bf16" and built["work"]["passages_embedded"] > 0
    folded = [row[4] for row in index_passages(root, bf16)[0]]
    for identity, held in ((bf16.identity, len(set(folded))), (embedder.identity, 0)):
        cache = EmbeddingCache(root, identity)
        found = cache.get_many([cache.key(text) for text in folded])
        cache.close()
        assert len(found) == held
    assert index_answers(root, embedder, QUESTIONS[:1])[0]  # fp32 questions over the bf16 index


def test_an_incremental_bf16_build_equals_a_forced_one_within_bf16_rounding(tmp_path, bf16):
    corpus, root, forced_root = tmp_path / "corpus", tmp_path / "index", tmp_path / "forced"
    corpus.mkdir()
    for path in SEED[:3]:
        shutil.copy(path, corpus)
    build_index(corpus, root, bf16, progress=False)
    shutil.copy(SEED[3], corpus)
    (corpus / SEED[0].name).unlink()
    work = build_index(corpus, root, bf16, progress=False).manifest["work"]
    assert (work["files_processed"], work["documents_written"], work["documents_deleted"]) == (1, 1, 1)
    assert work["passages_embedded"] > 0
    build_index(corpus, forced_root, bf16, progress=False, force=True)
    rows, vectors = index_passages(root, bf16)
    forced_rows, forced_vectors = index_passages(forced_root, bf16)
    assert rows == forced_rows and SEED[0].name not in {row[0] for row in rows}
    assert (vectors * forced_vectors).sum(axis=1).min() > BF16_MIN_COSINE
    answers, forced_answers = index_answers(root, bf16, QUESTIONS), index_answers(forced_root, bf16, QUESTIONS)
    assert [hits[0] for hits in answers] == [hits[0] for hits in forced_answers]
    # near-tied hits may swap places (measured on this corpus: 2 of 78 questions' top 5 reordered, none changed)
    same_five = sum(set(hits) == set(forced) for hits, forced in zip(answers, forced_answers))
    assert same_five >= 0.95 * len(answers)

