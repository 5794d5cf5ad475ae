"""The document library over HTTP: list documents, add them (multipart upload), delete them, follow the job.

  GET    /api/documents             documents of the served index with their status, pending changes, skipped files
  POST   /api/documents             multipart `files` (one or more), optional `folder`, `replace=true` → 202 + job
  DELETE /api/documents/<doc_id>    → 202 + job
  GET    /api/jobs/<id>             a job's state and progress (files done / total, passages embedded, errors)

Writing is off unless QA_ADMIN_KEY is set; each write must carry that key (`Authorization: Bearer <key>` or
`X-Admin-Key`). Accepted changes go into the corpus folder (QA_CORPUS) at once and into a job; a build process
(`python -m indexer build --jobs`, one at a time per index) makes them searchable, and every worker of the
service swaps the new build in (service/state.py). Changes arriving during a build wait for the next one.
"""
from __future__ import annotations

import hmac
import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

from flask import Blueprint, current_app, request

from indexer.jobs import create_job, jobs_dir, queued_jobs, read_job
from indexer.lock import is_locked
from service.api import check_doc_id, current_retriever
from service.errors import ApiError
from service.uploads import check_upload, safe_folder, write_upload

bp = Blueprint("library", __name__)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
LIST_LIMIT = 100
RELAUNCH_AFTER = 30.0  # seconds a job may stay queued with no build running before another build is started
_TRUE = ("1", "true", "yes", "on")


def register(app) -> None:
    app.config.setdefault("QA_CORPUS", os.environ.get("QA_CORPUS", "corpus"))
    app.config.setdefault("QA_ADMIN_KEY", os.environ.get("QA_ADMIN_KEY") or None)
    app.config.setdefault("QA_MAX_UPLOAD_MB", float(os.environ.get("QA_MAX_UPLOAD_MB", "50")))
    app.config.setdefault("QA_MAX_UPLOAD_FILES", int(os.environ.get("QA_MAX_UPLOAD_FILES", "20")))
    app.register_blueprint(bp)


@bp.get("/api/documents")
def list_documents() -> dict:
    folder = request.args.get("folder") or None
    offset, limit = _int_arg("offset", 0, 0, 10**9), _int_arg("limit", LIST_LIMIT, 1, 1000)
    retriever = current_retriever()
    store = retriever.store
    pending = _pending_changes()
    documents = [{**doc, "status": pending.get(doc["doc_id"], {}).get("status", "indexed")}
                 for doc in store.documents(folder, offset, limit)]
    indexed = {doc["doc_id"] for doc in documents}
    return {
        "build": retriever.build_id,
        "total": store.document_count(folder),
        "offset": offset, "limit": limit,
        "documents": documents,
        "pending": [change for doc_id, change in pending.items() if doc_id not in indexed],
        "skipped": [{"doc_id": s["path"], "reason": s["reason"]} for s in retriever.store.manifest["skipped"]],
        "writable": bool(current_app.config["QA_ADMIN_KEY"]),
    }


@bp.post("/api/documents")
def upload_documents() -> tuple[dict, int, dict]:
    _authorize_write()
    max_bytes = int(current_app.config["QA_MAX_UPLOAD_MB"] * 1024 * 1024)
    max_files = current_app.config["QA_MAX_UPLOAD_FILES"]
    request.max_content_length = max_files * max_bytes + 1024 * 1024  # the form's own overhead
    files = request.files.getlist("files") + request.files.getlist("file")
    if not files:
        raise ApiError(400, "no_files", "send the documents as multipart/form-data fields named 'files'")
    if len(files) > max_files:
        raise ApiError(400, "too_many_files", f"{len(files)} files; at most {max_files} per request "
                                              "(QA_MAX_UPLOAD_FILES)")
    corpus = _corpus()
    folder = safe_folder(request.form.get("folder", ""))
    replace = request.form.get("replace", request.args.get("replace", "")).lower() in _TRUE
    uploads = [check_upload(corpus, folder, f.filename or "", f.stream.read(max_bytes + 1), max_bytes, replace)
               for f in files]
    names = [u.doc_id for u in uploads]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ApiError(400, "duplicate_names", f"the request names {', '.join(duplicates)} more than once")
    for upload in uploads:
        write_upload(upload)
    job = _start_job("upload", names)
    documents = [{"doc_id": u.doc_id, "bytes": len(u.data), "replaced": u.replaces} for u in uploads]
    return {"job": job, "documents": documents}, 202, {"Location": f"/api/jobs/{job['id']}"}


@bp.delete("/api/documents/<doc_id:doc_id>")
def delete_document(doc_id: str) -> tuple[dict, int, dict]:
    _authorize_write()
    check_doc_id(doc_id)
    target = _corpus() / doc_id
    if not target.is_file() or not target.resolve().is_relative_to(_corpus().resolve()):
        raise ApiError(404, "not_found", f"no file {doc_id!r} in the corpus")
    target.unlink()
    job = _start_job("delete", [doc_id])
    return {"job": job}, 202, {"Location": f"/api/jobs/{job['id']}"}


@bp.get("/api/jobs/<job_id>")
def job_status(job_id: str) -> dict:
    job = read_job(_index(), job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    if job["state"] == "queued" and _age_seconds(job) > RELAUNCH_AFTER and not is_locked(_index()):
        _launch_build()  # its build process died before claiming it: start another
    return job


def _authorize_write() -> None:
    key = current_app.config["QA_ADMIN_KEY"]
    if not key:
        raise ApiError(403, "writes_disabled", "adding and deleting documents is off: the service has no "
                                               "QA_ADMIN_KEY")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    offered = [request.headers.get("X-Admin-Key", ""), token.strip() if scheme.lower() == "bearer" else ""]
    if not any(hmac.compare_digest(o.encode("latin-1", "replace"), key.encode()) for o in offered if o):
        raise ApiError(401, "unauthorized", "send the admin key as 'X-Admin-Key: <key>' or 'Authorization: Bearer <key>'")


def _pending_changes() -> dict[str, dict]:
    """doc_id → {doc_id, status, job} for files in jobs not yet done: queued, indexing or deleting."""
    changes: dict[str, dict] = {}
    for path in sorted(jobs_dir(_index()).glob("*.json"), key=lambda p: p.stat().st_mtime):
        job = read_job(_index(), path.stem)
        if job is None or job["state"] not in ("queued", "running"):
            continue
        status = "deleting" if job["kind"] == "delete" else "queued" if job["state"] == "queued" else "indexing"
        for doc_id in job["files"]:
            changes[doc_id] = {"doc_id": doc_id, "status": status, "job": job["id"]}
    return changes


def _start_job(kind: str, files: list[str]) -> dict:
    job = create_job(_index(), kind, files)
    _launch_build()
    return job


_launching = threading.Lock()


def _launch_build() -> None:
    """Start `python -m indexer build --jobs` for the queued jobs; it waits for a running build to end."""
    index = _index()
    with _launching:
        if not queued_jobs(index):
            return
        log = (jobs_dir(index) / "build.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "indexer", "build", "--corpus", str(_corpus()), "--index", str(index),
             "--jobs", "--quiet", *_store_arguments()],
            cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
        log.close()
        threading.Thread(target=process.wait, name="build-reaper", daemon=True).start()


def _store_arguments() -> list[str]:
    """The app's Milvus collection, if it serves one (the token goes by the inherited QA_MILVUS_TOKEN)."""
    uri, collection = current_app.config["QA_MILVUS_URI"], current_app.config["QA_COLLECTION"]
    return [*(["--milvus-uri", uri] if uri else []), *(["--collection", collection] if collection else [])]


def _age_seconds(job: dict) -> float:
    return (datetime.now(timezone.utc) - datetime.fromisoformat(job["created"])).total_seconds()


def _corpus() -> Path:
    return Path(current_app.config["QA_CORPUS"]).absolute()


def _index() -> Path:
    return Path(current_app.config["QA_INDEX"]).absolute()


def _int_arg(name: str, default: int, lowest: int, highest: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not lowest <= int(raw) <= highest:
        raise ApiError(400, f"invalid_{name}", f"{name} must be an integer from {lowest} to {highest}")
    return int(raw)

