"""python -m evals [--set xquad|drcd|cmrc|seed|formats ...] [--limit N] [--rebuild] [--datasets DIR] [--model M]
                 [--backend torch|torch-bf16|onnx|onnx-int8] [--report NAME] [--store embedded|milvus]

--store milvus starts a Milvus Lite server (data in evals/.cache/milvus/) and evaluates every row over a Milvus
collection per corpus instead of the embedded store, reached over HTTP as a Milvus cluster would be."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local: fail fast instead of waiting on the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from indexer.embedding import BACKENDS  # noqa: E402 (light: numpy only; the models load lazily)


def main(argv: list[str] | None = None) -> int:
    from evals.datasets import DEFAULT_DATASETS, LOCAL_SETS, SETS

    parser = argparse.ArgumentParser(prog="python -m evals", description="Retrieval accuracy: hybrid vs BM25 vs dense.")
    parser.add_argument("--set", choices=SETS, action="append", default=None,
                        help="run this set; repeat for several (default: all)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N questions of each row")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached eval indexes")
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS,
                        help="folder with xquad/, drcd/, cmrc2018/ (default: ../shared/datasets)")
    parser.add_argument("--model", default=None, help="sentence-transformers folder or hub id (default: $QA_MODEL)")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="how the model runs (default: $QA_BACKEND, else torch-bf16 where the CPU has bf16, "
                             "else torch)")
    parser.add_argument("--report", default=None, metavar="NAME",
                        help="write evals/results/NAME.md (default: latest, or the backend's name if not this CPU's "
                             "default)")
    parser.add_argument("--store", choices=("embedded", "milvus"), default="embedded",
                        help="the passage store the rows are asked against (default: embedded)")
    parser.add_argument("--passage-units", type=int, default=None, metavar="N",
                        help="index with passages of N units instead of the indexer's default (experiments)")
    args = parser.parse_args(argv)
    sets = list(dict.fromkeys(args.set)) if args.set else list(SETS)
    if any(s not in LOCAL_SETS for s in sets) and not args.datasets.is_dir():
        print(f"error: datasets folder {args.datasets} does not exist (use --datasets, or --set seed / formats)",
              file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")

    from evals import report
    from evals.runner import run
    from indexer.embedding import ModelMissingError, configured_backend, passage_backend
    from indexer.passages import Chunking

    try:
        backend = configured_backend(args.backend)
    except ValueError as error:
        parser.error(str(error))
    # another backend than this CPU's default must not replace latest.md, the shipped configuration's results
    report_name = args.report or ("latest" if backend == passage_backend() else backend)
    if args.store != "embedded":
        report_name = args.report or f"{report_name}-{args.store}".removeprefix("latest-")
    try:
        chunking = Chunking.of(args.passage_units) if args.passage_units else Chunking()
        with _store(args.store) as store:
            result = run(sets, args.datasets, args.limit, args.rebuild, model=args.model, chunking=chunking,
                         backend=backend, store=store)
    except ModelMissingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.terminal(result))
    json_path, md_path = report.write(result, name=report_name)
    print(f"\nwrote {json_path} and {md_path}")
    return 0


@contextmanager
def _store(name: str) -> Iterator:
    if name == "embedded":
        yield None
        return
    from evals.runner import CACHE_ROOT, StoreChoice
    from stores.milvus_server import MilvusServer

    with MilvusServer(CACHE_ROOT / "milvus") as server:
        yield StoreChoice(name, server.uri)


if __name__ == "__main__":
    sys.exit(main())
