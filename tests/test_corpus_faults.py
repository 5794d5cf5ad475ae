"""Corpus faults: every file is indexed or skipped with a reason, and the walk never crashes or hangs.

Links: folder links are not followed (a loop is skipped), file links leading outside the corpus are skipped.
Permission denied is real, not mocked: as root (where mode 000 does not stop reads) the walk runs in a
process without root's file-access capabilities.
"""
from __future__ import annotations

import codecs
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from indexer.build import build_index
from indexer.freshness import corpus_fingerprint
from conftest import process_corpus
from indexer.documents import max_file_bytes
from test_documents import SIMPLIFIED, TRADITIONAL

WALK_AND_PRINT = """
import json, sys
from pathlib import Path
sys.path.insert(0, "tests")
from conftest import process_corpus
documents, skipped = process_corpus(Path(sys.argv[1]))
print(json.dumps({"documents": list(documents), "skipped": skipped}))
"""


def _walk(corpus: Path, max_bytes: int = max_file_bytes()) -> tuple[dict, dict[str, str]]:
    return process_corpus(corpus, max_bytes)


def test_mixed_encodings_are_all_indexed(tmp_path: Path) -> None:
    files = {
        "gb18030.txt": (SIMPLIFIED, SIMPLIFIED.encode("gb18030")),
        "big5.txt": (TRADITIONAL, TRADITIONAL.encode("big5")),
        "bom.txt": (SIMPLIFIED, codecs.BOM_UTF8 + SIMPLIFIED.encode("utf-8")),
        "utf16.md": (TRADITIONAL, TRADITIONAL.encode("utf-16")),
    }
    for name, (_, data) in files.items():
        (tmp_path / name).write_bytes(data)
    documents, skipped = _walk(tmp_path)
    assert skipped == {}
    assert {name: documents[name].original for name in files} == {name: text for name, (text, _) in files.items()}


def _faulty_corpus(base: Path) -> Path:
    corpus = base / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "sub" / "a.txt").write_text(SIMPLIFIED, "utf-8")
    (corpus / "sub" / "loop").symlink_to(corpus, target_is_directory=True)  # a link to its own parent
    (corpus / "inside.txt").symlink_to(corpus / "sub" / "a.txt")
    (base / "secret.txt").write_text("outside the corpus", "utf-8")
    (corpus / "outside.txt").symlink_to(base / "secret.txt")
    os.mkfifo(corpus / "pipe.txt")  # reading it would block forever
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 20)
    (corpus / "huge.txt").write_text(TRADITIONAL * 3000, "utf-8")  # about 400 KB
    return corpus


EXPECTED_REASONS = {
    "sub/loop": "link to a folder, not followed",
    "outside.txt": "link to a file outside the corpus",
    "pipe.txt": "not a regular file",
    "binary.txt": "binary",
    "huge.txt": "too large",
}


def test_links_loops_special_binary_and_huge_files_are_skipped_with_a_reason(tmp_path: Path) -> None:
    documents, skipped = _walk(_faulty_corpus(tmp_path), max_bytes=100_000)
    assert sorted(documents) == ["inside.txt", "sub/a.txt"]
    assert set(skipped) == set(EXPECTED_REASONS)
    assert all(EXPECTED_REASONS[path] in reason for path, reason in skipped.items()), skipped


def test_a_build_of_a_faulty_corpus_reports_every_skip_and_the_size_cap(tmp_path: Path, embedder, monkeypatch) -> None:
    corpus = _faulty_corpus(tmp_path)
    monkeypatch.setenv("QA_MAX_FILE_MB", "0.1")
    assert corpus_fingerprint(corpus)  # the FIFO is not read (it would block)
    result = build_index(corpus, tmp_path / "index", embedder, progress=False, max_file_bytes=max_file_bytes())
    manifest = result.manifest
    assert manifest["max_file_bytes"] == 104857 and manifest["counts"]["documents"] == 2
    assert {s["path"] for s in manifest["skipped"]} == set(EXPECTED_REASONS)
    assert "skipped huge.txt: too large" in result.summary()


def test_the_size_cap_comes_from_the_argument_then_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("QA_MAX_FILE_MB", raising=False)
    assert max_file_bytes() == 50 * 2**20 and max_file_bytes(2) == 2 * 2**20
    monkeypatch.setenv("QA_MAX_FILE_MB", "3")
    assert max_file_bytes() == 3 * 2**20 and max_file_bytes(1) == 2**20
    with pytest.raises(ValueError, match="positive"):
        max_file_bytes(0)


def _without_root_file_access() -> list[str]:
    """A command prefix that drops root's power to read any file (mode 000 then means denied), or none if not root."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot make a file unreadable")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]


def test_unreadable_files_and_folders_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "readable.txt").write_text(SIMPLIFIED, "utf-8")
    (tmp_path / "secret.txt").write_text(TRADITIONAL, "utf-8")
    (tmp_path / "secret.txt").chmod(0)
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "inner.txt").write_text(SIMPLIFIED, "utf-8")
    (tmp_path / "locked").chmod(0)
    try:
        walk = subprocess.run(
            [*_without_root_file_access(), sys.executable, "-c", WALK_AND_PRINT, str(tmp_path)],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
    finally:
        (tmp_path / "locked").chmod(0o755)  # so that pytest can clean up
    assert walk.returncode == 0, walk.stderr
    result = json.loads(walk.stdout)
    assert result["documents"] == ["readable.txt"]
    assert result["skipped"] == {"locked": "unreadable folder: Permission denied",
                                 "secret.txt": "unreadable: Permission denied"}
