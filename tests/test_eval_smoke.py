"""The eval runner on the seed set (the session's seed index): accuracy floors and the reports' rows."""
from __future__ import annotations

import json

import numpy as np
import pytest

from evals import report
from evals.datasets import seed_rows
from evals.metrics import first_relevant_rank, summarize
from evals.runner import IndexInfo, QuestionEncoder, RunResult, evaluate_row, machine_description
from indexer.index_dir import open_index
from indexer.passages import Chunking
from service.retrieval import Retriever


@pytest.fixture(scope="module")
def result(seed_index, embedder) -> RunResult:
    retriever = Retriever(open_index(seed_index, embedder.model_id, embedder.dim), embedder)
    encoder = QuestionEncoder()
    rows = [evaluate_row(retriever, row, encoder) for row in seed_rows()]
    index = IndexInfo(retriever.passage_count, retriever.index.manifest["build_seconds"], cached=False)
    return RunResult("2000-01-01T00:00:00+00:00", 0.0, ["seed"], None, embedder.model_id, Chunking(), machine_description(),
                     {"seed-corpus": index}, rows)


def _row(result: RunResult, name: str):
    return next(row for row in result.rows if row.name == name)


# English questions over five Chinese articles on one topic rely on the dense model alone: 25 of 27 (.926)
# find their article in the top 5 (evals/results/latest.md); the floor guards that level.
@pytest.mark.parametrize("name, floor", [("seed zh-Hans", 0.95), ("seed zh-Hant", 0.95), ("seed en", 0.85)])
def test_hybrid_finds_the_gold_document_in_the_top_5(result, name, floor):
    assert _row(result, name).modes["hybrid"].metrics["R@5"] >= floor


@pytest.mark.parametrize("name", ["seed zh-Hans", "seed zh-Hant"])
def test_hybrid_top_1_is_not_worse_than_the_better_signal(result, name):
    r1 = {mode: m.metrics["R@1"] for mode, m in _row(result, name).modes.items()}
    assert r1["hybrid"] >= max(r1["bm25"], r1["dense"]) - 0.05, r1


def test_reports_name_every_row(result):
    names = [row.name for row in result.rows]
    assert names == ["seed zh-Hans", "seed zh-Hant", "seed en"]
    markdown, data = report.markdown(result), json.loads(report.to_json(result))
    assert all(name in markdown for name in names)
    assert [row["name"] for row in data["rows"]] == names
    assert all(name in report.terminal(result) for name in names)
    assert [line[:3] for line in report.gap_cells(result)] == [["seed", "seed zh-Hant", "seed zh-Hans"]]


def test_metrics_from_first_gold_ranks():
    ranks = [first_relevant_rank(docs, {"g", "g2"}) for docs in (["g", "x"], ["x", "g2", "g"], ["x"] * 10, ["x"] * 10 + ["g"])]
    assert ranks == [1, 2, 0, 11]
    scores = summarize(ranks)
    assert scores["R@1"] == 0.25 and scores["R@5"] == scores["R@10"] == 0.5
    assert scores["MRR@10"] == pytest.approx((1 + 1 / 2) / 4)
    assert scores["nDCG@10"] == pytest.approx((1 + 1 / np.log2(3)) / 4)
