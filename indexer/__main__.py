"""python -m indexer build --corpus DIR --index DIR [--model M] [--backend torch|onnx|onnx-int8] [--max-file-mb N] [--force]"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub here: fail fast instead of hanging on the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from indexer.embedding import BACKENDS  # noqa: E402 (light: numpy only; the models load lazily)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m indexer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the hybrid index of a corpus folder")
    build.add_argument("--corpus", type=Path, default=Path("corpus"))
    build.add_argument("--index", type=Path, default=Path("index"))
    build.add_argument("--model", default=None, help="sentence-transformers folder or hub id (default: $QA_MODEL)")
    build.add_argument("--backend", choices=BACKENDS, default=None,
                       help="how the model runs (default: $QA_BACKEND, else torch); recorded in the index's model id")
    build.add_argument("--passage-units", type=int, default=None, metavar="N",
                       help="passage size in units (a Han character or a Latin word each; default 160 — see evals/README.md)")
    build.add_argument("--max-file-mb", type=float, default=None, metavar="N",
                       help="skip files larger than N MB (default: $QA_MAX_FILE_MB, else 50)")
    build.add_argument("--force", action="store_true", help="rebuild even if the index is up to date")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    from indexer.build import build_index, is_up_to_date
    from indexer.documents import max_file_bytes
    from indexer.embedding import ModelMissingError, configured_backend, configured_model, load_embedder, model_id
    from indexer.passages import Chunking

    if not args.corpus.is_dir():
        print(f"error: corpus folder {args.corpus} does not exist", file=sys.stderr)
        return 2
    if args.passage_units is not None and args.passage_units < 10:
        parser.error("--passage-units must be at least 10")
    chunking = Chunking.of(args.passage_units) if args.passage_units else Chunking()
    try:
        max_bytes = max_file_bytes(args.max_file_mb)
    except ValueError as error:
        parser.error(str(error))
    model = configured_model(args.model)
    try:
        backend = configured_backend(args.backend)
    except ValueError as error:
        parser.error(str(error))
    if not args.force and is_up_to_date(args.corpus, args.index, model_id(model, backend), chunking, max_bytes):
        print(f"index at {args.index} is up to date with {args.corpus} (use --force to rebuild)")
        return 0
    try:
        embedder = load_embedder(model, backend)
    except ModelMissingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        result = build_index(args.corpus, args.index, embedder, progress=not args.quiet, chunking=chunking,
                             max_file_bytes=max_bytes)
    except ValueError as error:
        print(f"error: {error}; the previous index (if any) is still current", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
