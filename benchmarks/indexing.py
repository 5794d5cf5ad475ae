"""Index build: `python -m indexer build` in a child process over a corpus, timed, with its peak memory.

The indexer records the seconds spent inside the model's encode in its manifest, so the share of the
build spent outside it (reading, cleaning, chunking, segmenting, writing, FAISS) comes from the same run.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.loadgen import ROOT
from stores import index_dir
from stores.sqlite import SqliteReader


def build(corpus: Path, index_root: Path) -> dict:
    command = [sys.executable, "-m", "indexer", "build", "--corpus", str(corpus), "--index", str(index_root),
               "--force", "--quiet"]
    wall, peak_rss_mb = run_child(command, f"indexing {corpus}")
    manifest = index_dir.read_manifest(index_dir.current_build(index_root))
    passages = manifest["counts"]["passages"]
    return {
        "corpus": str(corpus.relative_to(ROOT) if corpus.is_relative_to(ROOT) else corpus),
        "documents": manifest["counts"]["documents"],
        "passages": passages,
        "vector_index": manifest["vector_index"],
        "build_seconds": manifest["build_seconds"],
        "encode_seconds": manifest["encode_seconds"],
        "outside_encode_share": 1 - manifest["encode_seconds"] / manifest["build_seconds"],
        "per_second": passages / manifest["build_seconds"],
        "embedded_per_second": manifest["work"]["passages_embedded"] / manifest["build_seconds"],
        "passage_backend": manifest["model"].get("passage_backend", "torch"),  # recorded since issue 15's bf16
        "process_seconds": wall,  # also interpreter start-up and loading the model
        "peak_rss_mb": peak_rss_mb,
        "work": manifest["work"],  # files processed, passages embedded / cached, stage_seconds
    }


def run_child(command: list[str], what: str) -> tuple[float, float]:
    """Run `command` from the project root; its wall seconds and its own peak RSS in MB. SystemExit if it fails."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT)
    _, status, usage = os.wait4(child.pid, 0)  # wait4: this child's own peak RSS (ru_maxrss, KiB)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{what} failed with exit code {os.waitstatus_to_exitcode(status)}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def sample_passages(index_root: Path, count: int, seed: int = 0) -> list[str]:
    """A random sample of the built passages' texts as the indexer embeds them (script-folded)."""
    store = SqliteReader(index_dir.current_build(index_root) / index_dir.STORE)
    ids = random.Random(seed).sample(range(store.passage_count), min(count, store.passage_count))
    passages = store.passages(ids)
    return [passages[i].folded for i in ids]
