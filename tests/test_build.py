"""Building the seed index: the documents and manifest it should have, and the failures it must survive."""
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stores.embedded import EmbeddedLocation
from stores import index_dir
from indexer.build import build_index
from indexer.freshness import is_up_to_date
from stores.index_dir import IndexUnusable, open_index
from text.clean import clean

ROOT = Path(__file__).resolve().parent.parent
SEED_DOCS = sorted(p.name for p in (ROOT / "corpus").glob("*.txt"))


def test_seed_index_has_every_article_and_a_complete_manifest(seed_index, embedder):
    opened = open_index(seed_index, embedder.model_id, embedder.dim)
    manifest = opened.manifest
    assert sorted(manifest["corpus"]["files"]) == SEED_DOCS
    assert manifest["counts"]["documents"] == 5 and manifest["counts"]["skipped"] == 0
    assert manifest["counts"]["passages"] == opened.store.passage_count == opened.vectors.ntotal > 50
    assert manifest["model"] == {"id": "multilingual-e5-small", "dim": 384, "passage_backend": embedder.backend}
    assert manifest["vector_index"] == "Flat" and manifest["build_seconds"] > 0
    titles = {doc: opened.store.document(doc).title for doc in SEED_DOCS}
    assert titles["000_3861388c3be20388.txt"] == "为什么微软必须拯救OpenAI"
    assert titles["001_423367123e860ede.txt"] == "再不跟Meta联合 微软就被OpenAI一个人掏空了"
    assert titles["004_e0dd1fc4cceb475f.txt"] == "微软OpenAI联手围剿英伟达,首款自研AI芯片下月发布!"
    assert opened.store.document("002_88511f47bc2856da.txt").language == "zh-Hant"


def test_stored_offsets_point_at_the_cited_text(seed_index, embedder):
    opened = open_index(seed_index, embedder.model_id, embedder.dim)
    passages = opened.store.passages(list(range(opened.store.passage_count)))
    for passage in passages.values():
        original = opened.store.original(passage.doc_id)
        assert clean(original[passage.start : passage.end]).text == passage.text
    assert "協議" in "".join(p.text for p in passages.values() if p.doc_id.startswith("002"))


def test_up_to_date_index_is_detected(seed_index, embedder):
    assert is_up_to_date(ROOT / "corpus", EmbeddedLocation(seed_index), embedder.model_id)
    assert not is_up_to_date(ROOT / "corpus", EmbeddedLocation(seed_index), "another-model")


def test_index_built_with_another_model_is_refused(seed_index, embedder):
    with pytest.raises(IndexUnusable, match="built with model multilingual-e5-small"):
        open_index(seed_index, "some-other-model", embedder.dim)


def test_failed_build_leaves_the_previous_index_current(tmp_path, embedder):
    root = tmp_path / "index"
    small = tmp_path / "corpus"
    small.mkdir()
    shutil.copy(ROOT / "corpus" / SEED_DOCS[0], small)
    first = Path(build_index(small, root, embedder, progress=False).where)
    (small / SEED_DOCS[0]).write_bytes(b"")  # now nothing is indexable: the build must fail
    with pytest.raises(ValueError, match="no indexable text"):
        build_index(small, root, embedder, progress=False)
    assert index_dir.current_build(root) == first
    assert open_index(root, embedder.model_id, embedder.dim).manifest["counts"]["documents"] == 1


def test_build_killed_midway_leaves_the_previous_index_current(tmp_path, embedder):
    root = tmp_path / "index"
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    first = Path(build_index(corpus, root, embedder, progress=False).where)
    for i in range(40):  # enough new passages (none in the embedding cache) that embedding takes a while
        text = (ROOT / "corpus" / SEED_DOCS[i % 5]).read_text("utf-8").replace("\n", f"（{i}）\n")
        (corpus / f"extra{i}.txt").write_text(text, "utf-8")
    build = subprocess.Popen(
        [sys.executable, "-m", "indexer", "build", "--corpus", str(corpus), "--index", str(root), "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while not list((root / "builds").glob(".tmp-*/passages.sqlite")) and time.monotonic() < deadline:
        assert build.poll() is None, build.stdout.read().decode()
        time.sleep(0.05)
    time.sleep(1.0)  # the new snapshot exists from the plan on: now inside embedding
    build.send_signal(signal.SIGKILL)
    build.wait()
    assert index_dir.current_build(root) == first
    reopened = open_index(root, embedder.model_id, embedder.dim)
    assert json.loads((first / "manifest.json").read_text())["build_id"] == reopened.build_id
    for extra in sorted(corpus.glob("extra*.txt"))[2:]:
        extra.unlink()  # the next build need not embed them all to show that it cleans the leftovers up
    build_index(corpus, root, embedder, progress=False)
    assert not list((root / "builds").glob(".tmp-*"))


def test_a_failed_build_leaves_no_temporary_folder(tmp_path, embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "empty.txt").write_bytes(b"")
    with pytest.raises(ValueError, match="no indexable text"):
        build_index(corpus, tmp_path / "index", embedder, progress=False)
    builds = tmp_path / "index" / "builds"
    assert not builds.exists() or list(builds.iterdir()) == []
