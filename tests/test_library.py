"""Adding and deleting documents over HTTP: off without an admin key, every bad upload refused with a 4xx JSON
error and nothing changed, and accepted changes searchable after the build job a real subprocess runs."""
from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from conftest import ROOT
from indexer.build import build_index
from service import create_app

ADMIN = {"X-Admin-Key": "admin-secret"}
NEW_TEXT = "新上传的报告：深海探测器“蛟龙九号”在马里亚纳海沟完成了一万零九百米的下潜，创造了新的纪录。"
QUESTION = "蛟龙九号下潜了多深？"
JOB_SECONDS = 240


def _library(folder: Path, embedder) -> tuple[Flask, Path]:
    """An app over a two-document corpus of its own, writable with the admin key."""
    corpus = folder / "corpus"
    corpus.mkdir()
    for name in sorted(p.name for p in (ROOT / "corpus").glob("*.txt"))[:2]:
        shutil.copy(ROOT / "corpus" / name, corpus)
    build_index(corpus, folder / "index", embedder, progress=False)
    app = create_app({"QA_INDEX": str(folder / "index"), "QA_CORPUS": str(corpus), "QA_ADMIN_KEY": "admin-secret",
                      "QA_RELOAD_SECONDS": 0.2, "QA_MAX_UPLOAD_MB": 0.05, "QA_MAX_UPLOAD_FILES": 3, "TESTING": True})
    return app, corpus


@pytest.fixture(scope="module")
def unchanged_library(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Flask, Path]:
    """Shared by the tests whose requests must all be refused (each checks that nothing changed)."""
    return _library(tmp_path_factory.mktemp("library"), embedder)


@pytest.fixture
def library(tmp_path: Path, embedder) -> tuple[Flask, Path]:
    return _library(tmp_path, embedder)


def _snapshot(corpus: Path) -> dict[str, bytes]:
    return {p.relative_to(corpus).as_posix(): p.read_bytes() for p in sorted(corpus.rglob("*")) if p.is_file()}


def _upload(client: FlaskClient, files: list[tuple[str, bytes]], headers: dict | None = ADMIN, **form: str):
    data = {**form, "files": [(io.BytesIO(content), name) for name, content in files]}
    return client.post("/api/documents", data=data, headers=headers or {}, content_type="multipart/form-data")


def _wait_for_job(client: FlaskClient, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.5)
    pytest.fail(f"job {job_id} did not finish within {JOB_SECONDS} s: {job}")


def _wait_for_build(client: FlaskClient, build_id: str) -> None:
    deadline = time.monotonic() + 30
    while client.get("/readyz").json.get("index") != build_id:
        assert time.monotonic() < deadline, "the service did not swap the new build in"
        time.sleep(0.2)


def _docx(text: str) -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("上传的Word文档", level=1)
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_without_an_admin_key_every_write_is_refused(tmp_path, seed_index) -> None:
    app = create_app({"QA_INDEX": str(seed_index), "QA_CORPUS": str(tmp_path), "TESTING": True})
    client = app.test_client()
    assert _upload(client, [("a.txt", NEW_TEXT.encode())]).json["error"]["code"] == "writes_disabled"
    response = client.delete("/api/documents/a.txt", headers=ADMIN)
    assert response.status_code == 403 and response.json["error"]["code"] == "writes_disabled"
    assert client.get("/api/documents").json["writable"] is False
    assert list(tmp_path.iterdir()) == []


BAD_UPLOADS = [
    ({"headers": None}, [("a.txt", b"text")], 401, "unauthorized"),
    ({"headers": {"X-Admin-Key": "wrong"}}, [("a.txt", b"text")], 401, "unauthorized"),
    ({}, [], 400, "no_files"),
    ({}, [("a.txt", b"x")] * 4, 400, "too_many_files"),
    ({}, [("a.exe", b"MZ\x90\x00")], 415, "unsupported_file_type"),
    ({}, [("report.pdf", "这不是PDF，只是文字。".encode())], 415, "file_type_mismatch"),
    ({}, [("notes.txt", b"%PDF-1.7\n" + bytes(range(256)) * 4)], 415, "file_type_mismatch"),
    ({}, [("page.docx", b"PK\x03\x04 not really a zip")], 415, "file_type_mismatch"),
    ({}, [("empty.txt", b"   ")], 400, "empty_file"),
    ({}, [("big.txt", "大".encode() * 20000)], 413, "payload_too_large"),
    ({}, [("good.txt", NEW_TEXT.encode()), ("good.txt", NEW_TEXT.encode())], 400, "duplicate_names"),
    ({"folder": "../outside"}, [("a.txt", NEW_TEXT.encode())], 400, "invalid_folder"),
    ({}, [("good.txt", NEW_TEXT.encode()), ("bad.pdf", b"no pdf")], 415, "file_type_mismatch"),  # all or nothing
]


@pytest.mark.parametrize("form, files, status, code", BAD_UPLOADS)
def test_bad_uploads_are_refused_and_change_nothing(unchanged_library, form, files, status, code) -> None:
    app, corpus = unchanged_library
    before = _snapshot(corpus)
    form = dict(form)
    headers = form.pop("headers", ADMIN)
    response = _upload(app.test_client(), files, headers, **form)
    assert (response.status_code, response.json["error"]["code"]) == (status, code), response.json
    assert _snapshot(corpus) == before
    assert not list((Path(app.config["QA_INDEX"]) / "jobs").glob("*.json"))


def test_existing_names_need_replace_and_names_are_made_safe(library) -> None:
    app, corpus = library
    client = app.test_client()
    existing = sorted(_snapshot(corpus))[0]
    refused = _upload(client, [(existing, NEW_TEXT.encode())])
    assert refused.status_code == 409 and refused.json["error"]["code"] == "already_exists"
    accepted = _upload(client, [("../../etc/新 报告?.txt", NEW_TEXT.encode())], folder="报告/2025")
    assert accepted.status_code == 202, accepted.json
    assert accepted.json["documents"] == [{"doc_id": "报告/2025/新 报告_.txt", "bytes": len(NEW_TEXT.encode()),
                                           "replaced": False}]
    assert (corpus / "报告" / "2025" / "新 报告_.txt").read_text("utf-8") == NEW_TEXT
    assert accepted.headers["Location"] == f"/api/jobs/{accepted.json['job']['id']}"
    _wait_for_job(client, accepted.json["job"]["id"])


def test_upload_then_delete_shows_in_answers_the_list_and_the_job(library) -> None:
    app, corpus = library
    client = app.test_client()
    assert all(p["doc_id"] != "uploads/蛟龙.txt" for p in client.get("/api/ask", query_string={"q": QUESTION}).json["passages"])
    response = _upload(client, [("蛟龙.txt", NEW_TEXT.encode()), ("word.docx", _docx("第二份文件讲的是茶叶的历史。"))],
                       folder="uploads")
    assert response.status_code == 202, response.json
    job = _wait_for_job(client, response.json["job"]["id"])
    assert job["state"] == "done", job
    assert job["result"]["files"] == {"uploads/蛟龙.txt": {"status": "indexed"}, "uploads/word.docx": {"status": "indexed"}}
    assert job["progress"]["files_processed"] == 2 and job["progress"]["passages_embedded"] >= 2
    _wait_for_build(client, job["result"]["build_id"])

    top = client.get("/api/ask", query_string={"q": QUESTION, "top_k": 1}).json["passages"][0]
    assert top["doc_id"] == "uploads/蛟龙.txt"
    scoped = client.post("/api/ask", json={"question": QUESTION, "folder": "uploads", "top_k": 5}).json["passages"]
    assert {p["doc_id"] for p in scoped} <= {"uploads/蛟龙.txt", "uploads/word.docx"}
    listing = client.get("/api/documents", query_string={"folder": "uploads"}).json
    assert [(d["doc_id"], d["status"], d["format"]) for d in listing["documents"]] == [
        ("uploads/word.docx", "indexed", "docx"), ("uploads/蛟龙.txt", "indexed", "text")]
    assert client.get("/api/documents/uploads/word.docx").json["extracted_text"].startswith("上传的Word文档")

    deleted = client.delete("/api/documents/uploads/蛟龙.txt", headers=ADMIN)
    assert deleted.status_code == 202
    job = _wait_for_job(client, deleted.json["job"]["id"])
    assert job["result"]["files"] == {"uploads/蛟龙.txt": {"status": "deleted"}}
    _wait_for_build(client, job["result"]["build_id"])
    assert client.get("/api/documents/uploads/蛟龙.txt").status_code == 404
    assert all(p["doc_id"] != "uploads/蛟龙.txt" for p in client.get("/api/ask", query_string={"q": QUESTION}).json["passages"])
    assert client.delete("/api/documents/uploads/蛟龙.txt", headers=ADMIN).status_code == 404
