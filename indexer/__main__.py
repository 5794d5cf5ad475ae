"""python -m indexer build --corpus DIR --index DIR [--model M] [--backend torch|torch-bf16|onnx|onnx-int8]
[--max-file-mb N] [--max-pages N] [--file-timeout S] [--force] [--no-wait] [--milvus-uri URI [--collection NAME]]
[--ray local|auto|ADDRESS]

Incremental: only files whose bytes changed are read again and only passages never embedded are encoded
(caches in INDEX/cache/). One build at a time per index: a second one waits for the first, or with --no-wait
exits at once with status 75. With --milvus-uri the build goes into a Milvus collection, updated in place
(INDEX then holds only the caches, the lock and the jobs); with --ray the passages are embedded on Ray. Exit
status: 0 built or up to date, 1 nothing indexable, 2 bad arguments or no model, 3 the store did not answer,
75 another build holds the index."""
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
                       help="how the model runs (default: $QA_BACKEND, else torch-bf16 where the CPU has bf16 "
                            "instructions, else torch); recorded in the index's manifest")
    build.add_argument("--passage-units", type=int, default=None, metavar="N",
                       help="passage size in units (a Han character or a Latin word each; default 160 — see evals/README.md)")
    build.add_argument("--max-file-mb", type=float, default=None, metavar="N",
                       help="skip files larger than N MB (default: $QA_MAX_FILE_MB, else 50)")
    build.add_argument("--max-pages", type=int, default=None, metavar="N",
                       help="skip PDFs with more pages (default: $QA_MAX_PAGES, else 2000)")
    build.add_argument("--file-timeout", type=float, default=None, metavar="S",
                       help="skip a file whose reading takes longer (default: $QA_FILE_TIMEOUT, else 300 s)")
    build.add_argument("--force", action="store_true",
                       help="rebuild from scratch: read every file and embed every passage again, ignoring the caches")
    build.add_argument("--no-wait", action="store_true",
                       help="if another build is running on this index, exit at once (status 75) instead of waiting")
    build.add_argument("--jobs", action="store_true",
                       help="report progress into the queued jobs of INDEX/jobs (uploads and deletions over HTTP)")
    build.add_argument("--milvus-uri", default=None,
                       help="build into a Milvus collection, e.g. http://127.0.0.1:19530 (default: $QA_MILVUS_URI; "
                            "token: $QA_MILVUS_TOKEN)")
    build.add_argument("--collection", default=None, help="the Milvus collection (default: $QA_COLLECTION or passages)")
    build.add_argument("--ray", default=None, metavar="local|auto|ADDRESS",
                       help="embed passages on Ray: a local Ray on this machine's cores, the cluster Ray finds, or one address")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    from indexer.build import build_index
    from indexer.freshness import is_up_to_date
    from indexer.documents import max_file_bytes
    from indexer.workers import WorkersFailed
    from indexer.embedding import (EmbeddingFailed, LazyEncoder, ModelMissingError, configured_backend,
                                   configured_model, model_id)
    from indexer.jobs import JobReporter
    from indexer.lock import BuildLocked
    from indexer.passages import Chunking
    from indexer.workers import file_timeout

    if not args.corpus.is_dir():
        print(f"error: corpus folder {args.corpus} does not exist", file=sys.stderr)
        return 2
    if args.passage_units is not None and args.passage_units < 10:
        parser.error("--passage-units must be at least 10")
    chunking = Chunking.of(args.passage_units) if args.passage_units else Chunking()
    try:
        max_bytes = max_file_bytes(args.max_file_mb)
        limits = page_limits(args.max_pages)
        timeout = file_timeout(args.file_timeout)
    except ValueError as error:
        parser.error(str(error))
    model = configured_model(args.model)
    try:
        backend = configured_backend(args.backend)
    except ValueError as error:
        parser.error(str(error))
    from stores import StoreConfig, locate
    from stores.contract import StoreUnavailable

    location = locate(StoreConfig.from_env(args.index, args.milvus_uri, args.collection))

    def up_to_date() -> bool:
        return is_up_to_date(args.corpus, location, model_id(model), chunking, max_bytes, limits)

    if not args.force and not args.jobs and up_to_date():
        print(f"index at {args.index} is up to date with {args.corpus} (use --force to rebuild)")
        return 0
    jobs = JobReporter(args.index) if args.jobs else None

    def claim_jobs() -> None:
        if jobs is not None and jobs.claim() == 0 and not args.force and up_to_date():
            raise NothingQueued

    encoder = LazyEncoder(model, backend)
    engine = None
    try:
        engine = _ray_engine(args.ray, model, backend) if args.ray else None
        result = build_index(
            args.corpus, args.index, encoder, progress=not args.quiet, chunking=chunking,
            max_file_bytes=max_bytes, limits=limits, force=args.force, wait=not args.no_wait, file_timeout=timeout,
            report=jobs.report if jobs else None, on_wait=_say_waiting(args.index),
            before=claim_jobs, location=location, engine=engine,
        )
    except StoreUnavailable as error:
        if jobs:
            jobs.fail(str(error))
        print(f"error: {error}; run the build again when the store answers", file=sys.stderr)
        return EXIT_STORE
    except NothingQueued:
        print("no queued jobs and the index is up to date: an earlier build took them")
        return 0
    except BuildLocked as error:
        print(f"error: {error}; not waiting (--no-wait). Try again when it has finished.", file=sys.stderr)
        return EXIT_LOCKED
    except (ValueError, ModelMissingError, EmbeddingFailed, WorkersFailed) as error:
        if jobs:
            jobs.fail(str(error))
        print(f"error: {error}; the previous index (if any) is still current", file=sys.stderr)
        return 1 if isinstance(error, ValueError) else 2
    finally:
        if engine is not None:
            engine.close()
    if jobs:
        jobs.finish(result.manifest)
    print(result.summary())
    return 0


EXIT_STORE = 3  # the store (a Milvus server) did not answer
EXIT_LOCKED = 75  # EX_TEMPFAIL: another build holds the index


def _ray_engine(address: str, model: str, backend: str):
    from indexer.embedding import EmbeddingFailed
    from indexer.ray_embedding import RayEngine  # Ray is imported only with --ray

    try:
        return RayEngine(address, model, backend)
    except (ConnectionError, RuntimeError, ValueError) as error:  # no cluster at that address, Ray failed to start
        raise EmbeddingFailed(f"cannot start or reach Ray at {address!r}: {error}") from error


def _say_waiting(index: Path):
    def say(pid: int | None) -> None:
        print(f"another build (pid {pid or '?'}) is running on {index}; waiting for it to finish "
              "(--no-wait to exit instead)", file=sys.stderr, flush=True)
    return say


def page_limits(max_pages: int | None):
    from extract import Limits

    value = max_pages if max_pages is not None else int(os.environ.get("QA_MAX_PAGES") or Limits.max_pages)
    if value < 1:
        raise ValueError(f"the page limit must be a positive number, not {value}")
    return Limits(max_pages=value)


class NothingQueued(Exception):
    """--jobs: another build already took every queued job."""


if __name__ == "__main__":
    sys.exit(main())
