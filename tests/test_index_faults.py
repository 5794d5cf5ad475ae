"""A damaged or mismatched index is refused with a reason naming the problem, at start-up and on reload;
a refused reload keeps the previous build serving."""
from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from stores.embedded import EmbeddedLocation
from stores import index_dir
from stores.index_dir import IndexUnusable, open_index
from stores.sqlite import SqliteReader
from service import create_app
from service.retrieval import retriever_for
from service.state import RetrieverState


def _edit_manifest(build: Path, edit: Callable[[dict], None]) -> None:
    manifest = index_dir.read_manifest(build)
    edit(manifest)
    index_dir.write_manifest(build, manifest)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _scribble(path: Path) -> None:
    """Overwrite 8 KiB in the middle of the file with junk (SQLite pages whose checks then fail)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8192] = b"\xa5" * len(data[middle : middle + 8192])
    path.write_bytes(bytes(data))


def _set_model(manifest: dict) -> None:
    manifest["model"]["id"] = "another-model"


def _add_a_passage(manifest: dict) -> None:
    manifest["counts"]["passages"] += 1


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated vectors": (lambda build: _truncate(build / index_dir.VECTORS), "damaged: vectors.faiss"),
    "manifest of another model": (lambda build: _edit_manifest(build, _set_model), "built with model another-model"),
    "bm25 missing": (lambda build: shutil.rmtree(build / index_dir.KEYWORDS), "bm25 is missing"),
    "store missing": (lambda build: (build / index_dir.STORE).unlink(), "passages.sqlite is missing"),
    "store scribbled over": (lambda build: _scribble(build / index_dir.STORE), "damaged: passages.sqlite"),
    "manifest with wrong counts": (lambda build: _edit_manifest(build, _add_a_passage), "inconsistent: manifest says"),
}


def _publish_copy(root: Path, source: Path, build_id: str, damage: Callable[[Path], None] | None = None) -> None:
    """Publish a copy of build `source` as `build_id` (its manifest says so), damaged first if asked."""
    tmp = index_dir.new_build_dir(root, build_id)
    shutil.copytree(source, tmp, dirs_exist_ok=True)
    _edit_manifest(tmp, lambda manifest: manifest.update(build_id=build_id))
    if damage:
        damage(tmp)
    index_dir.publish(root, tmp, build_id)


@pytest.fixture
def good_build(seed_index: Path) -> Path:
    return index_dir.current_build(seed_index)


@pytest.mark.parametrize("fault", DAMAGE)
def test_a_damaged_index_is_refused_naming_the_problem(fault: str, tmp_path: Path, good_build: Path, embedder) -> None:
    damage, message = DAMAGE[fault]
    _publish_copy(tmp_path, good_build, "broken", damage)
    with pytest.raises(IndexUnusable, match=message):
        open_index(tmp_path, embedder.model_id, embedder.dim)


def test_a_reload_to_a_damaged_build_keeps_the_previous_one(tmp_path: Path, good_build: Path, embedder, caplog) -> None:
    _publish_copy(tmp_path, good_build, "good")
    state = RetrieverState(EmbeddedLocation(tmp_path), reload_seconds=1)
    state.swap(retriever_for(EmbeddedLocation(tmp_path), embedder))
    for number, (fault, (damage, message)) in enumerate(DAMAGE.items()):
        _publish_copy(tmp_path, good_build, f"broken-{number}", damage)
        with caplog.at_level(logging.ERROR, logger="service.state"):
            state.reload()
        assert state.current.retriever.build_id == "good", fault
        assert "refusing the new index" in caplog.text and message.split(":")[0] in caplog.text, fault
    _publish_copy(tmp_path, good_build, "mended")
    state.reload()
    assert state.current.retriever.build_id == "mended"
    assert state.current.retriever.ask("OpenAI與AWS的協議價值多少？", 3).hits


def test_a_damaged_index_answers_503_with_the_reason(tmp_path: Path, good_build: Path) -> None:
    _publish_copy(tmp_path, good_build, "broken", DAMAGE["truncated vectors"][0])
    client = create_app({"QA_INDEX": str(tmp_path), "TESTING": True}).test_client()
    for response in (client.get("/readyz"), client.post("/api/ask", json={"question": "AWS"})):
        assert response.status_code == 503
        error = json.loads(response.data)["error"]
        assert error["code"] == "index_unavailable" and "vectors.faiss" in error["message"]


def test_a_served_store_keeps_answering_after_its_build_is_deleted(tmp_path: Path, good_build: Path) -> None:
    """A later publish may delete the build a worker still serves; new request threads must still read it."""
    copy = tmp_path / "passages.sqlite"
    shutil.copy(good_build / index_dir.STORE, copy)
    store = SqliteReader(copy)
    copy.unlink()
    found: list[int] = []
    reader = threading.Thread(target=lambda: found.append(len(store.passages([0, 1, 2]))))
    reader.start()
    reader.join(timeout=10)
    assert found == [3]
