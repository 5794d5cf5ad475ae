"""Incremental builds: only changed files are read, embedded and written, and the result holds what a forced build
holds; caches are collected; one build at a time per index; a killed build never hurts the next."""
from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from conftest import ROOT, index_answers, index_passages
from stores import index_dir
from indexer.build import build_index
from indexer.caches import EmbeddingCache
from stores.index_dir import open_index
from indexer.passages import Chunking
from indexer.process import Settings, pipeline_version
from text.normalize import fold_script

SEED = sorted((ROOT / "corpus").glob("*.txt"))
QUESTIONS = [json.loads(line) for line in (ROOT / "evals" / "seed_questions.jsonl").read_text("utf-8").splitlines()]
NEW_DOC = "新文档：量子计算公司Qubitron宣布在苏州建设第二座晶圆厂，投资额为七十亿元，预计2027年投产。\n" * 3
CHANGED_LINE = "补充：Contoso 与 Fabrikam 签署了价值十二亿美元的光纤协议，合同期为五年。\n"


def _corpus(tmp_path: Path, name: str = "corpus") -> Path:
    corpus = tmp_path / name
    corpus.mkdir()
    for path in SEED:
        shutil.copy(path, corpus)
    return corpus


def _change(corpus: Path) -> None:
    """Add one file, overwrite one, delete one."""
    (corpus / "new.txt").write_text(NEW_DOC, "utf-8")
    changed = corpus / SEED[1].name
    lines = changed.read_text("utf-8").split("\n")
    changed.write_text("\n".join([*lines[:4], CHANGED_LINE.strip(), *lines[4:]]), "utf-8")
    (corpus / SEED[4].name).unlink()


def test_an_incremental_build_does_only_the_changed_work_and_equals_a_forced_build(tmp_path, embedder):
    corpus, root = _corpus(tmp_path), tmp_path / "index"
    cold = build_index(corpus, root, embedder, progress=False).manifest
    _change(corpus)
    work = build_index(corpus, root, embedder, progress=False).manifest["work"]
    assert work["files_processed"] == 2  # the new and the changed file; the others came from the cache
    assert 0 < work["passages_embedded"] <= 6  # the new file's passages and the changed passage at the end
    assert (work["documents_written"], work["documents_deleted"]) == (2, 1)  # the other three stay as they were
    forced = build_index(corpus, tmp_path / "forced", embedder, progress=False, force=True).manifest
    assert forced["work"]["files_processed"] == 5 and forced["work"]["passages_cached"] == 0

    incremental_rows, incremental_vectors = index_passages(root, embedder)
    forced_rows, forced_vectors = index_passages(tmp_path / "forced", embedder)
    assert incremental_rows == forced_rows
    np.testing.assert_allclose(incremental_vectors, forced_vectors, atol=1e-4)
    questions = [q["question"] for q in QUESTIONS[::4]]
    assert index_answers(root, embedder, questions) == index_answers(tmp_path / "forced", embedder, questions)

    docs = {row[0] for row in incremental_rows}
    assert "new.txt" in docs and SEED[4].name not in docs
    assert any(CHANGED_LINE.strip() in row[3] for row in incremental_rows if row[0] == SEED[1].name)
    assert cold["counts"]["documents"] == 5


def test_a_build_without_changes_reads_and_embeds_nothing(tmp_path, embedder):
    corpus, root = _corpus(tmp_path), tmp_path / "index"
    build_index(corpus, root, embedder, progress=False)
    (corpus / "renamed.txt").write_bytes((corpus / SEED[0].name).read_bytes())  # same bytes under a new name
    (corpus / SEED[0].name).unlink()
    work = build_index(corpus, root, embedder, progress=False).manifest["work"]
    assert (work["files_processed"], work["passages_embedded"]) == (0, 0)


def test_a_rebuild_looks_up_only_the_files_the_last_build_did_not_embed(tmp_path, embedder, monkeypatch):
    corpus, root = _corpus(tmp_path), tmp_path / "index"
    build_index(corpus, root, embedder, progress=False)
    (corpus / "new.txt").write_text(NEW_DOC, "utf-8")
    asked: list[bytes] = []
    holds = EmbeddingCache.holds
    monkeypatch.setattr(EmbeddingCache, "holds", lambda cache, keys: asked.extend(keys) or holds(cache, keys))
    manifest = build_index(corpus, root, embedder, progress=False).manifest
    assert 0 < len(asked) == manifest["work"]["passages_embedded"] <= 3  # the new file's passages alone
    assert manifest["encoder"] == (embedder.identity or embedder.model_id)


def test_a_build_continues_the_published_snapshot_without_the_embedding_cache(tmp_path, embedder):
    corpus, root = _corpus(tmp_path), tmp_path / "index"
    before = build_index(corpus, root, embedder, progress=False).manifest
    cache = EmbeddingCache(root, embedder.identity or embedder.model_id)
    cache._db.execute("DELETE FROM embeddings")  # the snapshot holds the vectors of what does not change
    cache.close()
    (corpus / "new.txt").write_text(NEW_DOC, "utf-8")
    after = build_index(corpus, root, embedder, progress=False).manifest
    assert 0 < after["work"]["passages_embedded"] <= 3 and after["work"]["documents_written"] == 1
    assert after["counts"]["passages"] > before["counts"]["passages"]
    assert after["mean_vector"] != before["mean_vector"]
    build_index(corpus, tmp_path / "forced", embedder, progress=False, force=True)
    rows, vectors = index_passages(root, embedder)
    forced_rows, forced_vectors = index_passages(tmp_path / "forced", embedder)
    assert rows == forced_rows
    np.testing.assert_allclose(vectors, forced_vectors, atol=1e-4)
    forced_mean = open_index(tmp_path / "forced", embedder.model_id, embedder.dim).manifest["mean_vector"]
    np.testing.assert_allclose(after["mean_vector"], forced_mean, atol=2e-6)


def test_the_pipeline_version_follows_the_settings():
    assert pipeline_version(Settings()) == pipeline_version(Settings())
    assert pipeline_version(Settings(Chunking.of(120))) != pipeline_version(Settings())


def test_cache_entries_used_by_neither_of_the_last_two_builds_are_dropped(tmp_path, embedder):
    corpus, root = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    texts = [f"第{i}版：这份文件记录了编号为{i}{i}{i}的实验结果，温度上升了{i}度。" for i in range(3)]
    for text in texts:  # three generations of one file
        (corpus / "a.txt").write_text(text, "utf-8")
        build_index(corpus, root, embedder, progress=False)
    cache = EmbeddingCache(root, embedder.identity or embedder.model_id)
    present = {i for i, text in enumerate(texts) if cache.get_many([cache.key(fold_script(text))])}
    cache.close()
    assert present == {1, 2}  # the first version is used by neither the current nor the previous build


def test_the_documents_and_vectors_a_build_keeps_without_reading_stay_in_the_caches(tmp_path, embedder):
    corpus, root = _corpus(tmp_path), tmp_path / "index"
    build_index(corpus, root, embedder, progress=False)
    for version in range(3):  # three builds that read only the new file, none of the seed documents
        (corpus / "new.txt").write_text(f"第{version}版。" + NEW_DOC, "utf-8")
        assert build_index(corpus, root, embedder, progress=False).manifest["work"]["files_processed"] == 1
    (index_dir.current_build(root) / index_dir.KEYWORDS / "tokens.npy").unlink()  # as if written by older code
    manifest = build_index(corpus, root, embedder, progress=False).manifest  # so every document is written again
    assert manifest["work"]["documents_written"] == 6 and manifest["work"]["files_processed"] == 0
    assert manifest["work"]["passages_embedded"] == 0  # and the vectors of the kept ones are still cached


def test_a_file_over_the_time_limit_is_skipped_and_retried_by_the_next_build(tmp_path, embedder):
    corpus, root = _corpus(tmp_path), tmp_path / "index"
    with pytest.raises(ValueError, match="no indexable text"):
        build_index(corpus, root, embedder, progress=False, file_timeout=0.001)
    assert index_dir.current_build(root) is None
    manifest = build_index(corpus, root, embedder, progress=False).manifest  # timeouts are not remembered
    assert manifest["counts"]["documents"] == 5 and manifest["skipped"] == []


def _build_process(corpus: Path, root: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "indexer", "build", "--corpus", str(corpus), "--index", str(root), "--quiet", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _new_passages(corpus: Path, count: int) -> None:
    """Files whose passages no cache has seen, so that a build of them takes a while."""
    for i in range(count):
        text = SEED[i % len(SEED)].read_text("utf-8").replace("\n", f"（第{i}份）\n")
        (corpus / f"extra{i}.txt").write_text(text, "utf-8")


def _wait_for(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_build_waits_or_with_no_wait_exits_75_and_neither_shows_a_traceback(tmp_path, embedder):
    corpus, root = _corpus(tmp_path), tmp_path / "index"
    build_index(corpus, root, embedder, progress=False)
    _new_passages(corpus, 6)
    first = _build_process(corpus, root, "--force")
    _wait_for(lambda: list((root / "builds").glob(".tmp-*")))
    refused = subprocess.run(
        [sys.executable, "-m", "indexer", "build", "--corpus", str(corpus), "--index", str(root), "--no-wait"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    waiting = _build_process(corpus, root)
    first_out, _ = first.communicate(timeout=600)
    waiting_out, _ = waiting.communicate(timeout=600)
    assert refused.returncode == 75 and "another build" in refused.stderr and "--no-wait" in refused.stderr
    assert first.returncode == 0 and waiting.returncode == 0, first_out + waiting_out
    assert "waiting for it to finish" in waiting_out
    for output in (refused.stderr, first_out, waiting_out):
        assert "Traceback" not in output
    assert open_index(root, embedder.model_id, embedder.dim).manifest["counts"]["documents"] == 11


@pytest.mark.parametrize("stage", ["read", "embed"])
def test_kill_9_at_any_stage_leaves_the_served_index_whole_and_the_next_build_working(tmp_path, embedder, stage):
    corpus, root = _corpus(tmp_path), tmp_path / "index"
    served = Path(build_index(corpus, root, embedder, progress=False).where)
    _new_passages(corpus, 6)
    build = _build_process(corpus, root)
    if stage == "read":  # its reader processes are at work
        _wait_for(lambda: psutil.pid_exists(build.pid) and psutil.Process(build.pid).children())
    else:  # the new snapshot's folder exists: the plan is made, the new passages are being encoded
        _wait_for(lambda: any(tmp.joinpath("passages.sqlite").exists() for tmp in (root / "builds").glob(".tmp-*")))
    time.sleep(0.5)
    build.send_signal(signal.SIGKILL)
    build.wait()
    assert index_dir.current_build(root) == served
    assert open_index(root, embedder.model_id, embedder.dim).manifest["counts"]["documents"] == 5
    manifest = build_index(corpus, root, embedder, progress=False, wait=False).manifest  # the lock died with it
    assert manifest["counts"]["documents"] == 11
    assert not list((root / "builds").glob(".tmp-*"))  # the dead build's folder is gone


def test_a_store_left_mostly_empty_by_deletions_is_compacted(tmp_path, embedder):
    corpus, root = _corpus(tmp_path), tmp_path / "index"
    build_index(corpus, root, embedder, progress=False)
    for path in SEED[1:]:
        (corpus / path.name).unlink()
    manifest = build_index(corpus, root, embedder, progress=False).manifest
    assert (manifest["work"]["documents_written"], manifest["work"]["documents_deleted"]) == (0, 4)
    store = sqlite3.connect(index_dir.current_build(root) / index_dir.STORE)
    assert store.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert store.execute("SELECT min(id), max(id), count(*) FROM passages").fetchone() == (
        0, manifest["counts"]["passages"] - 1, manifest["counts"]["passages"])
