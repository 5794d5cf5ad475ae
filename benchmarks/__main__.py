"""`make bench`: the floor, the query path over HTTP, the index build, incremental rebuilds, PDF extraction and
the vector index at 1M vectors, all measured in one run on this machine; writes benchmarks/RESULTS.md, results.json and
the plots (plots/*.png).

    PYTHONPATH=. .venv/bin/python -m benchmarks [--quick] [--ann-total N] [--only incremental,extraction [--merge]]

--quick: the seed corpus only and 100k ANN vectors (a few minutes; for trying changes, not for RESULTS.md).
--only: just these sections (incremental rebuilds, PDF extraction, stores, overload, ceiling, million), written to
benchmarks/.cache/only/ (or quick/); --merge also puts them into benchmarks/results.json and regenerates RESULTS.md
from it, marked as coming from a separate run, the other sections unchanged. `million` runs only this way.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import (ann, ceiling, corpus, extraction, floor, incremental, indexing, million, query, report,
                        report_sections, soak, stores)
from benchmarks.loadgen import ROOT
from benchmarks.soak import seed_questions
from evals.datasets import SEED_CORPUS
from stores import index_dir
from indexer.embedding import FP32_BACKEND, Encoder, load_embedder, question_backend
from stores.faiss_index import load_vector_index

HERE = Path(__file__).resolve().parent
PASSAGE_SAMPLE = 512
SECTIONS = ("incremental", "extraction", "stores", "overload", "ceiling", "million")  # the parts `--only` can run alone
SEPARATE = ("million",)  # 21–28 min: only with --only (`make bench-1m`), not in `make bench`
PDF_PAGES, QUICK_PDF_PAGES = 200, 30


@dataclass
class Encoders:
    questions: dict[str, Encoder]  # the service's backend first, then torch (the reference) if another
    passages: tuple[str, Encoder]  # raw fp32 torch: issue 15's reference for the build, whatever it runs
    packed: Encoder  # the service's encoder exactly as it loads it: short batches packed (indexer/packing.py)


def encoders_to_measure() -> Encoders:
    """The raw models (padded batches, as people run them) and the service's own encoder beside them."""
    served = question_backend()
    loaded = {backend: load_embedder(None, backend, side_by_side=backend == served)  # the served one as served
              for backend in dict.fromkeys((served, FP32_BACKEND))}
    questions = {b: loaded[b] for b in dict.fromkeys((served, FP32_BACKEND))}
    return Encoders(questions, (FP32_BACKEND, loaded[FP32_BACKEND]),
                    load_embedder(None, served, side_by_side=True, packed=True))


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
        floors[served]["questions"]["packed_side_by_side"] = floor.side_by_side_per_second(encoders.packed, questions)
        passage_backend, passage_encoder = encoders.passages
        floors[served]["passages"] = {"backend": passage_backend, **floor.passage_floor(passage_encoder, passages)}
        vectors = encoders.questions[served].queries(questions)
        vector_index = load_vector_index(index_dir.current_build(index_root) / index_dir.VECTORS, screened=False)
        floors[served]["search"] = floor.search_floor(vector_index, vectors)
    result = {"questions": len(questions), "build": built, "backend": served, "floor": floors.pop(served),
              "other_floors": floors}
    with timed(timings, f"{name}: HTTP"):
        served_encoder, most = encoders.questions[served], max(query.CLIENTS)
        result["http"] = query.measure(index_root, questions, Path(f"/tmp/bench-gunicorn-{name}.log"),
                                       raw_rate=lambda: floor.batches_per_second(served_encoder, questions, most),
                                       raw_single=lambda: floor.single_p50_ms(served_encoder, questions))
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
    parser.add_argument("--only", type=_sections, default=None, metavar="SECTION[,SECTION]",
                        help=f"run only these of {', '.join(SECTIONS)}")
    parser.add_argument("--merge", action="store_true",
                        help="with --only: merge the sections into benchmarks/results.json and rewrite RESULTS.md")
    parser.add_argument("--rewrite", action="store_true",
                        help="measure nothing: regenerate RESULTS.md from benchmarks/results.json")
    args = parser.parse_args()
    if args.rewrite:
        return report.write(json.loads((HERE / "results.json").read_text(encoding="utf-8")), HERE, plots=False)
    if args.merge and (args.only is None or args.quick):
        parser.error("--merge needs --only and no --quick")
    if args.only is not None:
        return main_only(args)
    started, timings = time.perf_counter(), {}
    encoders = encoders_to_measure()
    corpora = {"seed": (SEED_CORPUS, seed_questions())}
    if not args.quick:
        corpora["datasets"] = (corpus.write_corpus(), corpus.questions())
    results = {name: bench_corpus(name, root, questions, encoders, timings) for name, (root, questions) in corpora.items()}
    largest = list(results)[-1]
    del encoders  # the rebuilds and the PDF build run in child processes; free the models' memory
    sections = run_sections([s for s in SECTIONS if s not in SEPARATE], args.quick, timings, largest, corpora[largest], cold=results[largest]["build"])
    with timed(timings, "ANN"):
        base = ann.load_base([corpus.CACHE / f"index-{largest}"])
        total = args.ann_total or (100_000 if args.quick else 1_000_000)
        ann_rows = ann.run(base, results[largest]["question_vectors"], total)
    for result in results.values():
        del result["question_vectors"]
    timings["total"] = time.perf_counter() - started
    out = corpus.CACHE / "quick" if args.quick else HERE  # a quick run never overwrites RESULTS.md
    document = {"machine": report.machine(), "corpora": results, "ann": {"total": total, "base": len(base),
                "rows": ann_rows}, **separate_sections(out), **sections, "timings": timings, "quick": args.quick}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(document, indent=1, ensure_ascii=False, default=_plain) + "\n")
    report.write(document, out)
    print(f"[bench] wrote {out.relative_to(ROOT)}/RESULTS.md in {timings['total'] / 60:.1f} min")


def separate_sections(out: Path) -> dict:
    """The sections only `--only … --merge` runs (SEPARATE) as last merged into `out`: a full run keeps them,
    each still marked with the run it came from."""
    previous = out / "results.json"
    if not previous.exists():
        return {}
    merged = json.loads(previous.read_text(encoding="utf-8"))
    return {name: merged[name] for name in SEPARATE if name in merged}


def run_sections(names, quick: bool, timings: dict, name: str, corpus_and_questions: tuple[Path, list[str]],
                 cold: dict | None = None) -> dict:
    """Incremental rebuilds of the corpus (reusing its cold build `cold` of corpus.CACHE/index-<name> if
    given), the PDF extraction, the Milvus store and Ray build against the embedded store and an in-process
    build, and 64 clients against one worker over the seed index; each result notes when it ran."""
    corpus_root, questions = corpus_and_questions
    sections = {}
    if "incremental" in names:
        with timed(timings, f"{name}: incremental rebuilds"):
            cold_index = corpus.CACHE / f"index-{name}" if cold is not None else None
            sections["incremental"] = {"corpus_name": name, **incremental.run(corpus_root, name, cold_index, cold)}
    if "extraction" in names:
        with timed(timings, "PDF extraction"):
            sections["extraction"] = extraction.run(QUICK_PDF_PAGES if quick else PDF_PAGES)
    if "stores" in names:
        with timed(timings, f"{name}: Milvus and Ray"):
            index_root = corpus.CACHE / f"index-{name}"
            if cold is None and not (index_root / "current").exists():
                indexing.build(corpus_root, index_root)
            sections["stores"] = stores.run(corpus_root, name, index_root, questions)
    if "overload" in names:
        with timed(timings, "seed: overload"):
            seed_index = corpus.CACHE / "index-seed"
            if not (seed_index / "current").exists():
                indexing.build(SEED_CORPUS, seed_index)
            sections["overload"] = soak.overload(seed_index, seed_questions())
    if "ceiling" in names:
        with timed(timings, f"{name}: hardware ceiling"):
            index_root = corpus.CACHE / f"index-{name}"
            if not (index_root / "current").exists():
                indexing.build(corpus_root, index_root)
            sections["ceiling"] = {"corpus_name": name, **ceiling.run(index_root)}
    if "million" in names:
        with timed(timings, "the whole service at a million passages"):
            sections["million"] = million.run(million.QUICK_PASSAGES if quick else million.PASSAGES)
    for section in sections.values():
        section["date"] = report.machine()["date"]
    return sections


def main_only(args: argparse.Namespace) -> None:
    started, timings = time.perf_counter(), {}
    name, corpus_and_questions = (("seed", (SEED_CORPUS, seed_questions())) if args.quick
                                  else ("datasets", (corpus.write_corpus(), corpus.questions())))
    sections = run_sections(args.only, args.quick, timings, name, corpus_and_questions)
    timings["total"] = time.perf_counter() - started
    command = "python -m benchmarks --only " + ",".join(args.only) + (" --quick" if args.quick else "")
    for section in sections.values():
        section["separate_run"] = {"command": command, "seconds": timings["total"], "machine": report.machine()}
    document = {"machine": report.machine(), **sections, "timings": timings, "quick": args.quick}
    out = corpus.CACHE / ("quick" if args.quick else "only")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(document, indent=1, ensure_ascii=False, default=_plain) + "\n")
    (out / "RESULTS.md").write_text(report_sections.sections_markdown(document), encoding="utf-8")
    print(report_sections.sections_markdown(document))
    print(f"[bench] wrote {out.relative_to(ROOT)}/RESULTS.md in {timings['total'] / 60:.1f} min")
    if args.merge:
        merged = json.loads((HERE / "results.json").read_text(encoding="utf-8"))
        merged.update(sections)
        (HERE / "results.json").write_text(json.dumps(merged, indent=1, ensure_ascii=False, default=_plain) + "\n")
        report.write(merged, HERE, plots=False)  # the plots show parts these sections leave alone
        print(f"[bench] merged {', '.join(sections)} into {(HERE / 'RESULTS.md').relative_to(ROOT)}")


def _sections(value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    return names


def _plain(value):
    return value.item() if isinstance(value, np.generic) else str(value)


if __name__ == "__main__":
    main()
