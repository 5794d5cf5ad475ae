"""Incremental rebuilds: after a cold build, add one document, change one, delete one, change nothing.

Works on copies (benchmarks/.cache/incremental-<name>/: the corpus, and the index if the cold build was
already made by `indexing.build` in this run), so neither the corpus folder nor the index the other parts
serve is touched. Each rebuild runs in a child process, as a user's `python -m indexer build` would: a fresh
interpreter calling `build_index` with `indexer.embedding.LazyEncoder` (the CLI's encoder, which loads the
model only when some passage is not in the embedding cache), timed around the load. Its seconds are compared
with the cold build's, both as the whole child process (interpreter start-up and model load included) and as
the manifest's `build_seconds`. The unchanged case is run twice: the CLI, whose "up to date" check (one hash
over the corpus) returns before any build, and `build_index` itself.

Which documents: the corpus's text files sorted by size; the one at the median is the source of the added
document (each paragraph's sentences in reverse order and numbered, under a new first line, so that every
passage is new), the next one gets a sentence inserted in its middle, the one after that is deleted.

    PYTHONPATH=. .venv/bin/python -m benchmarks.incremental rebuild --corpus C --index I   (one rebuild, JSON)
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import indexing
from benchmarks.corpus import CACHE
from benchmarks.loadgen import ROOT
from stores import index_dir
from indexer.caches import CACHE_DIR

ADDED = "bench-added/new-document.txt"
INSERTED = "这一句是基准测试插入的，用来检验修改一个文件之后的增量重建。"
_SENTENCE_END = re.compile(r"(?<=[。！？!?])|(?<=[.;])\s+")


def run(corpus_root: Path, name: str, cold_index: Path | None = None, cold: dict | None = None) -> dict:
    """Cold build (or a copy of the one given), then the four rebuilds; every number from this run."""
    work = CACHE / f"incremental-{name}"
    shutil.rmtree(work, ignore_errors=True)
    corpus, index = work / "corpus", work / "index"
    shutil.copytree(corpus_root, corpus)
    if cold is not None and cold_index is not None:
        shutil.copytree(cold_index, index, symlinks=True)  # INDEX/current is a relative link
    else:
        cold = indexing.build(corpus, index)
    manifest = index_dir.read_manifest(index_dir.current_build(index))
    result = {
        "corpus": cold["corpus"],
        "cold": {"documents": cold["documents"], "passages": cold["passages"],
                 "build_seconds": cold["build_seconds"], "process_seconds": cold["process_seconds"],
                 "encode_seconds": cold["encode_seconds"], "work": manifest["work"]},
        "caches_after_cold": cache_sizes(index, cold["passages"]),
        "rebuilds": [],
    }
    source, changed, deleted = pick_documents(corpus)
    steps = [
        ("add one document", lambda: add_document(corpus, source)),
        ("change one document", lambda: insert_sentence(corpus / changed)),
        ("delete one document", lambda: (corpus / deleted).unlink()),
        ("no change", lambda: None),
    ]
    for label, change in steps:
        change()
        if label == "no change":
            result["rebuilds"].append(_row("no change: CLI (up-to-date check)", cli_rebuild(corpus, index), cold))
        result["rebuilds"].append(_row(label + ("" if label != "no change" else ": build_index"),
                                       rebuild(corpus, index), cold))
    result["documents"] = {"added from": source, "changed": changed, "deleted": deleted}
    passages = result["rebuilds"][-1]["passages"]
    result["caches_after"] = cache_sizes(index, passages)
    return result


def _row(label: str, measured: dict, cold: dict) -> dict:
    row = {"change": label, **measured}
    row["share_of_cold_process"] = measured["process_seconds"] / cold["process_seconds"]
    if measured.get("build_seconds") is not None:
        row["share_of_cold_build"] = measured["build_seconds"] / cold["build_seconds"]
    print(f"[incremental] {label}: {measured['process_seconds']:.1f} s "
          f"({row['share_of_cold_process']:.1%} of the cold build's process)", flush=True)
    return row


def pick_documents(corpus: Path) -> tuple[str, str, str]:
    files = sorted((p for p in corpus.rglob("*") if p.is_file() and p.suffix in (".txt", ".md")),
                   key=lambda p: (p.stat().st_size, p.as_posix()))
    middle = len(files) // 2
    chosen = files[middle : middle + 3] if len(files) >= 3 else files
    return tuple(p.relative_to(corpus).as_posix() for p in chosen)  # type: ignore[return-value]


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def add_document(corpus: Path, source: str) -> str:
    text = (corpus / source).read_text(encoding="utf-8")
    # each paragraph's sentences reversed and numbered: new passages even where a paragraph is one sentence
    paragraphs = [f"（{n}）" + "".join(reversed(sentences(p)))
                  for n, p in enumerate((p for p in text.split("\n\n") if p.strip()), 1)]
    target = corpus / ADDED
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("基准测试新增的文档\n\n" + "\n\n".join(reversed(paragraphs)) + "\n", encoding="utf-8")
    return ADDED


def insert_sentence(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    parts = sentences(text)
    middle = len(parts) // 2
    path.write_text("".join(parts[:middle]) + INSERTED + "".join(parts[middle:]), encoding="utf-8")


def rebuild(corpus: Path, index: Path) -> dict:
    """One build_index in a child process through LazyEncoder; its own JSON plus the process's wall seconds."""
    command = [sys.executable, "-m", "benchmarks.incremental", "rebuild", "--corpus", str(corpus), "--index", str(index)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"rebuild failed ({done.returncode}): {done.stderr[-2000:]}")
    return {"process_seconds": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def cli_rebuild(corpus: Path, index: Path) -> dict:
    """`python -m indexer build` as a user runs it (no --force); it must answer "up to date"."""
    command = [sys.executable, "-m", "indexer", "build", "--corpus", str(corpus), "--index", str(index), "--quiet"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - started
    if done.returncode != 0 or "up to date" not in done.stdout:
        raise SystemExit(f"expected an up-to-date index: {done.returncode} {done.stdout} {done.stderr[-2000:]}")
    manifest = index_dir.read_manifest(index_dir.current_build(index))
    return {"process_seconds": wall, "build_seconds": None, "model_load_seconds": 0.0, "files_processed": 0,
            "passages_embedded": 0, "passages_cached": 0, "stage_seconds": {}, "up_to_date": True,
            "passages": manifest["counts"]["passages"], "documents": manifest["counts"]["documents"]}


def _env() -> dict:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def cache_sizes(index: Path, passages: int) -> dict:
    """Bytes on disk of each cache (the SQLite file with its -wal and -shm), its entries, and per 10k passages."""
    folder = index / CACHE_DIR
    sizes = {}
    for name, table in (("embeddings", "embeddings"), ("documents", "documents")):
        base = folder / f"{name}.sqlite"
        files = {suffix: (Path(f"{base}{suffix}").stat().st_size if Path(f"{base}{suffix}").exists() else 0)
                 for suffix in ("", "-wal", "-shm")}
        total = sum(files.values())
        sizes[name] = {"bytes": total, "files": files, "entries": _entries(base, table),
                       "mb_per_10k_passages": total / 2**20 / passages * 10_000 if passages else None}
    return sizes


def _entries(path: Path, table: str) -> int | None:
    import sqlite3

    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


def _child(corpus: Path, index: Path) -> None:
    started = time.perf_counter()
    from indexer.build import build_index
    from indexer.embedding import LazyEncoder

    class TimedLazyEncoder(LazyEncoder):
        load_seconds = 0.0

        def load(self):
            if self._loaded is None:
                began = time.perf_counter()
                loaded = super().load()
                self.load_seconds = time.perf_counter() - began
                return loaded
            return super().load()

    imported = time.perf_counter()
    encoder = TimedLazyEncoder()  # hashes the model folder's heads for its identity, as the CLI does
    began = time.perf_counter()
    built = build_index(corpus, index, encoder, progress=False)
    ended = time.perf_counter()
    m = built.manifest
    work = m["work"]
    print(json.dumps({
        "import_seconds": imported - started, "encoder_seconds": began - imported,
        "build_index_seconds": ended - began, "build_seconds": m["build_seconds"],
        "model_load_seconds": encoder.load_seconds, "files_processed": work["files_processed"],
        "files_total": work["files_total"], "passages_embedded": work["passages_embedded"],
        "passages_cached": work["passages_cached"], "stage_seconds": work["stage_seconds"],
        "passages": m["counts"]["passages"], "documents": m["counts"]["documents"],
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("rebuild", help="one build_index through LazyEncoder; prints JSON")
    one.add_argument("--corpus", type=Path, required=True)
    one.add_argument("--index", type=Path, required=True)
    args = parser.parse_args()
    _child(args.corpus, args.index)


if __name__ == "__main__":
    main()
