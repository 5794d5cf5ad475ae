"""`make bench`: the floor, the query path over HTTP, the index build and the vector index at 1M vectors,
all measured in one run on this machine; writes benchmarks/RESULTS.md, results.json and
the plots (plots/*.png).

    PYTHONPATH=. .venv/bin/python -m benchmarks [--quick] [--ann-total N]

--quick: the seed corpus only and 100k ANN vectors (a few minutes; for trying changes, not for RESULTS.md).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import ann, corpus, floor, indexing, query, report
from benchmarks.loadgen import ROOT
from evals.datasets import SEED_CORPUS, SEED_QUESTIONS
from indexer import index_dir
from indexer.embedding import Encoder, configured_backend, load_embedder, question_backend
from indexer.vectors import load_vector_index

HERE = Path(__file__).resolve().parent
PASSAGE_SAMPLE = 512


def seed_questions() -> list[str]:
    return [json.loads(line)["question"] for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines() if line]


@dataclass
class Encoders:
    questions: dict[str, Encoder]  # the service's backend first, then torch (the reference) if another
    passages: tuple[str, Encoder]  # the indexer's backend


def encoders_to_measure() -> Encoders:
    passage_backend, served = configured_backend(), question_backend()
    loaded = {backend: load_embedder(None, backend) for backend in dict.fromkeys((served, "torch", passage_backend))}
    return Encoders({b: loaded[b] for b in dict.fromkeys((served, "torch"))}, (passage_backend, loaded[passage_backend]))


def bench_corpus(name: str, corpus_root: Path, questions: list[str], encoders: Encoders, timings: dict) -> dict:
    """Build an index of `corpus_root`, measure the floor on its passages and questions, then serve it."""
    index_root = corpus.CACHE / f"index-{name}"
    with timed(timings, f"{name}: build"):
        built = indexing.build(corpus_root, index_root)
    with timed(timings, f"{name}: floor"):
        passages = indexing.sample_passages(index_root, PASSAGE_SAMPLE)
        floors = {backend: {"questions": floor.question_floor(encoder, questions)}
                  for backend, encoder in encoders.questions.items()}
        served = next(iter(encoders.questions))
        passage_backend, passage_encoder = encoders.passages
        floors[served]["passages"] = {"backend": passage_backend, **floor.passage_floor(passage_encoder, passages)}
        vectors = encoders.questions[served].queries(questions)
        vector_index = load_vector_index(index_dir.current_build(index_root) / index_dir.VECTORS)
        floors[served]["search"] = floor.search_floor(vector_index, vectors)
    result = {"questions": len(questions), "build": built, "backend": served, "floor": floors.pop(served),
              "other_floors": floors}
    with timed(timings, f"{name}: HTTP"):
        result["http"] = query.measure(index_root, questions, Path(f"/tmp/bench-gunicorn-{name}.log"))
    result["question_vectors"] = vectors
    return result


class timed:
    def __init__(self, timings: dict, label: str) -> None:
        self.timings, self.label = timings, label

    def __enter__(self) -> None:
        self.started = time.perf_counter()
        print(f"[bench] {self.label} …", flush=True)

    def __exit__(self, *_) -> None:
        self.timings[self.label] = time.perf_counter() - self.started
        print(f"[bench] {self.label}: {self.timings[self.label]:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ann-total", type=int, default=None)
    args = parser.parse_args()
    started, timings = time.perf_counter(), {}
    encoders = encoders_to_measure()
    corpora = {"seed": (SEED_CORPUS, seed_questions())}
    if not args.quick:
        corpora["datasets"] = (corpus.write_corpus(), corpus.questions())
    results = {name: bench_corpus(name, root, questions, encoders, timings) for name, (root, questions) in corpora.items()}
    largest = list(results)[-1]
    with timed(timings, "ANN"):
        base = ann.load_base([corpus.CACHE / f"index-{largest}"])
        total = args.ann_total or (100_000 if args.quick else 1_000_000)
        ann_rows = ann.run(base, results[largest]["question_vectors"], total)
    for result in results.values():
        del result["question_vectors"]
    timings["total"] = time.perf_counter() - started
    document = {"machine": report.machine(), "corpora": results, "ann": {"total": total, "base": len(base),
                "rows": ann_rows}, "timings": timings, "quick": args.quick}
    out = corpus.CACHE / "quick" if args.quick else HERE  # a quick run never overwrites RESULTS.md
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(document, indent=1, ensure_ascii=False, default=_plain) + "\n")
    report.write(document, out)
    print(f"[bench] wrote {out.relative_to(ROOT)}/RESULTS.md in {timings['total'] / 60:.1f} min")


def _plain(value):
    return value.item() if isinstance(value, np.generic) else str(value)


if __name__ == "__main__":
    main()
