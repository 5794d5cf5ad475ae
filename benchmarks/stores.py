"""The Milvus store against the embedded one, and a Ray build against an in-process one, all in one run.

Stores: the corpus already built into the embedded store (`index_root`, whose caches hold every vector) is
built into a collection of a fresh Milvus Lite server on loopback (`python -m indexer build --milvus-uri`, so
the write path is timed without encoding), then gunicorn serves each store in turn and the same questions are
asked: 1-client latency and 8-client throughput, worker memory, and the server's memory and data on disk.

Ray: a sample of the corpus's documents (RAY_SAMPLE_PASSAGES passages or so) is built twice with --force (every
passage encoded), in process and with `--ray local` (2 workers on this machine's 2 cores), each in its own
child process like a user's build; passages/s of the encode stage and of the whole process.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

from benchmarks import query
from benchmarks.corpus import CACHE
from benchmarks.loadgen import ROOT
from stores.embedded import EmbeddedLocation
from stores.milvus import MilvusLocation
from stores.milvus_server import MilvusServer

CLIENTS = (1, 8)
RAY_SAMPLE_PASSAGES = 2000


def run(corpus_root: Path, name: str, index_root: Path, questions: list[str]) -> dict:
    return {"corpus_name": name, **compare_stores(corpus_root, name, index_root, questions),
            "ray": compare_ray(corpus_root, name)}


def compare_stores(corpus_root: Path, name: str, index_root: Path, questions: list[str]) -> dict:
    data = CACHE / f"milvus-{name}"
    shutil.rmtree(data, ignore_errors=True)
    collection = f"bench_{name}"
    with MilvusServer(data) as server:
        built = _build(corpus_root, index_root, "--milvus-uri", server.uri, "--collection", collection)
        manifest = MilvusLocation(server.uri, collection).manifest() or {}
        log = Path(f"/tmp/bench-gunicorn-{name}")
        embedded = query.measure(index_root, questions, log.with_suffix(".embedded.log"), CLIENTS)
        milvus = query.measure(index_root, questions, log.with_suffix(".milvus.log"), CLIENTS,
                               QA_MILVUS_URI=server.uri, QA_COLLECTION=collection)
        server_rss = psutil.Process(server.pid).memory_info().rss
    passages = manifest.get("counts", {}).get("passages", 0)
    return {
        "passages": passages,
        "milvus_build": {**built, "build_seconds": manifest.get("build_seconds"),
                         "documents_written": manifest.get("work", {}).get("documents_written"),
                         "stage_seconds": manifest.get("work", {}).get("stage_seconds", {})},
        "embedded": {**embedded, "disk_mb": _size(EmbeddedLocation(index_root).root / "current") / 2**20},
        "milvus": {**milvus, "server_rss_mb": server_rss / 2**20, "disk_mb": _size(data) / 2**20},
    }


def compare_ray(corpus_root: Path, name: str) -> dict:
    work = CACHE / f"ray-{name}"
    shutil.rmtree(work, ignore_errors=True)
    sample = _sample_corpus(corpus_root, work / "corpus", RAY_SAMPLE_PASSAGES)
    runs = {}
    for label, flags in (("in_process", ()), ("ray_local", ("--ray", "local"))):
        index = work / f"index-{label}"
        wall = _build(sample, index, "--force", *flags)
        manifest = EmbeddedLocation(index).manifest() or {}
        embedded, encode = manifest["work"]["passages_embedded"], manifest["encode_seconds"]
        runs[label] = {**wall, "passages": manifest["counts"]["passages"], "passages_embedded": embedded,
                       "build_seconds": manifest["build_seconds"], "encode_seconds": encode,
                       "encode_per_second": embedded / encode, "process_per_second": embedded / wall["process_seconds"]}
    shutil.rmtree(work, ignore_errors=True)
    return runs


def _build(corpus: Path, index: Path, *flags: str) -> dict:
    """One `python -m indexer build` in a child process, as a user runs it: its wall time."""
    command = [sys.executable, "-m", "indexer", "build", "--corpus", str(corpus), "--index", str(index),
               "--quiet", *flags]
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if finished.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({finished.returncode}):\n{finished.stderr[-2000:]}")
    return {"process_seconds": time.perf_counter() - started}


def _sample_corpus(corpus_root: Path, out: Path, passages: int) -> Path:
    """Whole files, smallest folder first, until about `passages` passages (~1 passage per 300 bytes)."""
    budget = passages * 300
    for path in sorted(p for p in corpus_root.rglob("*") if p.is_file()):
        if budget <= 0:
            break
        target = out / path.relative_to(corpus_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
        budget -= path.stat().st_size
    return out


def _size(path: Path) -> int:
    root = path.resolve()
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
