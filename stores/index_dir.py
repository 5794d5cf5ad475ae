"""The index directory: the contract between the indexer and the service.

    INDEX/current -> builds/<build id>        (a symlink, switched atomically)
    INDEX/builds/<build id>/manifest.json     (format version, model, counts, corpus hashes, skipped files)
                           /passages.sqlite   (documents, passages, offsets)
                           /vectors.faiss     (dense, row i = passage id i)
                           /bm25/             (keyword, column i = passage id i)
                           /pivot/            (keyword over the passages' pivot words, text/bilingual.py)

A build (holding INDEX/.build.lock, indexer/lock.py) writes builds/.tmp-<id>-<pid>/ and renames it when
complete; only then does `current` move. A build that dies midway leaves its .tmp folder, which the next
build removes once it holds the lock and sees that pid dead, and `current` untouched. INDEX/cache/ holds
the caches that make rebuilds incremental (indexer/caches.py).
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import faiss

from stores.bm25 import KeywordIndex, load_keyword_index
from indexer.lock import is_alive
from stores.contract import FORMAT_VERSION, IndexUnusable, check_model
from stores.sqlite import SqliteReader
from stores.faiss_index import load_vector_index

MANIFEST = "manifest.json"
STORE = "passages.sqlite"
VECTORS = "vectors.faiss"
KEYWORDS = "bm25"
PIVOT = "pivot"
T = TypeVar("T")
KEEP_PREVIOUS_BUILDS = 1  # kept for rollback; older builds are deleted after a switch


def builds_dir(root: Path) -> Path:
    return root / "builds"


def current_build(root: Path) -> Path | None:
    link = root / "current"
    return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None


def new_build_dir(root: Path, build_id: str) -> Path:
    tmp = builds_dir(root) / f".tmp-{build_id}-{os.getpid()}"
    tmp.mkdir(parents=True)
    return tmp


def remove_stale_temporaries(root: Path) -> None:
    """Remove the .tmp folders of builds that died; call only while holding the build lock."""
    for tmp in builds_dir(root).glob(".tmp-*") if builds_dir(root).is_dir() else []:
        pid = tmp.name.rpartition("-")[2]
        if not (pid.isdigit() and int(pid) != os.getpid() and is_alive(int(pid))):
            shutil.rmtree(tmp, ignore_errors=True)


def publish(root: Path, tmp: Path, build_id: str) -> Path:
    """Rename the finished build into place, then point `current` at it in one atomic rename."""
    final = builds_dir(root) / build_id
    os.replace(tmp, final)
    link_tmp = root / f".current-{build_id}"
    link_tmp.symlink_to(Path("builds") / build_id)
    os.replace(link_tmp, root / "current")
    _remove_old_builds(root, keep={final.name})
    return final


def _remove_old_builds(root: Path, keep: set[str]) -> None:
    builds = sorted((p for p in builds_dir(root).iterdir() if not p.name.startswith(".")), key=lambda p: p.name)
    old = [p for p in builds if p.name not in keep]
    for stale in old[: max(0, len(old) - KEEP_PREVIOUS_BUILDS)]:
        shutil.rmtree(stale, ignore_errors=True)


def write_manifest(build: Path, manifest: dict) -> None:
    (build / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")


def read_manifest(build: Path) -> dict:
    try:
        manifest = json.loads((build / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexUnusable(f"{build} has no {MANIFEST}; rebuild it with `make index`") from None
    except (OSError, ValueError) as error:
        raise IndexUnusable(f"{build / MANIFEST} is unreadable ({error}); rebuild it with `make index`") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexUnusable(
            f"index format {manifest.get('format_version')} at {build}, this code reads {FORMAT_VERSION}; "
            "rebuild it with `make index`"
        )
    return manifest


@dataclass
class OpenIndex:
    path: Path
    manifest: dict
    store: SqliteReader
    vectors: faiss.Index
    keywords: KeywordIndex
    pivot: KeywordIndex

    @property
    def build_id(self) -> str:
        return self.manifest["build_id"]


def open_index(root: Path, model_id: str, model_dim: int) -> OpenIndex:
    """Open INDEX/current and check it is whole and made with this model; IndexUnusable says what is wrong."""
    build = current_build(root)
    if build is None:
        raise IndexUnusable(f"no index at {root}; build one with `make index` (python -m indexer build)")
    manifest = read_manifest(build)
    check_model(manifest, model_id, model_dim, f"index {build.name}")
    store = _open_part(build, STORE, _checked_store)
    vectors = _open_part(build, VECTORS, load_vector_index)
    keywords = _open_part(build, KEYWORDS, load_keyword_index)
    pivot = _open_part(build, PIVOT, load_keyword_index)
    _check_counts(build, manifest, store, vectors, {KEYWORDS: keywords, PIVOT: pivot})
    return OpenIndex(build, manifest, store, vectors, keywords, pivot)


def _open_part(build: Path, name: str, opener: Callable[[Path], T]) -> T:
    """Open one file of a build; a missing or damaged one is IndexUnusable naming it."""
    path = build / name
    if not path.exists():
        raise IndexUnusable(f"index {build.name} is incomplete: {name} is missing; rebuild it with `make index`")
    try:
        return opener(path)
    except (sqlite3.DatabaseError, RuntimeError, OSError, ValueError, KeyError) as error:
        raise IndexUnusable(f"index {build.name} is damaged: {name}: {error}; rebuild it with `make index`") from None


def _checked_store(path: Path) -> SqliteReader:
    store = SqliteReader(path)
    store.check()
    return store


def _check_counts(build: Path, manifest: dict, store: SqliteReader, vectors: faiss.Index,
                  keywords: dict[str, KeywordIndex]) -> None:
    expected = manifest["counts"]["passages"]
    found = {"passage store": store.passage_count, "vectors": vectors.ntotal,
             **{name: index.passage_count for name, index in keywords.items()}}
    wrong = {name: n for name, n in found.items() if n != expected}
    if wrong:
        raise IndexUnusable(f"index {build.name} is inconsistent: manifest says {expected} passages, found {wrong}")
    if vectors.d != manifest["model"]["dim"]:
        raise IndexUnusable(f"index {build.name} has {vectors.d}-d vectors, manifest says {manifest['model']['dim']}")
