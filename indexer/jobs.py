"""Jobs: corpus changes made over HTTP (uploads, deletions) and the build that makes them searchable.

A job is one JSON file, INDEX/jobs/<id>.json, so every service worker process sees every job. The service
writes it "queued" after changing the corpus and starts `python -m indexer build --jobs`; that build, once it
holds the index lock, claims every queued job ("running"), writes its progress into them, and ends them
"done" (with what became of each of their files) or "failed". A job queued while a build runs is claimed by
the next build. Files are replaced atomically (write, then rename), so a reader never sees half a job.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from indexer.progress import Progress
from indexer.lock import is_alive

JOBS_DIR = "jobs"
KEEP_FINISHED = 200  # the newest finished jobs kept; older ones are deleted when a build ends
REPORT_EVERY = 0.5  # seconds between progress writes


def jobs_dir(index: Path) -> Path:
    return index / JOBS_DIR


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write(path: Path, job: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def create_job(index: Path, kind: str, files: list[str]) -> dict:
    """A new queued job for the corpus files just changed (doc ids)."""
    job = {"id": secrets.token_hex(8), "kind": kind, "state": "queued", "created": _now(), "files": files,
           "progress": None, "result": None, "error": None}
    jobs_dir(index).mkdir(parents=True, exist_ok=True)
    _write(jobs_dir(index) / f"{job['id']}.json", job)
    return job


def read_job(index: Path, job_id: str) -> dict | None:
    """The job as its last writer left it; a running job whose build process is gone is reported failed."""
    if not (job_id.isascii() and job_id.isalnum()):
        return None
    try:
        job = json.loads((jobs_dir(index) / f"{job_id}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if job["state"] == "running" and not is_alive(job.get("pid", 0)):
        job = {**job, "state": "failed", "error": "the build process stopped before finishing; the served index "
                                                  "is unchanged, and the next build will include these files"}
    return job


def queued_jobs(index: Path) -> list[dict]:
    jobs = (read_job(index, path.stem) for path in sorted(jobs_dir(index).glob("*.json")))
    return [job for job in jobs if job is not None and job["state"] == "queued"]


class JobReporter:
    """The build's side: claim the queued jobs, report progress into them, end them."""

    def __init__(self, index: Path) -> None:
        self.index = index
        self.jobs: list[dict] = []
        self._last_write = 0.0

    def claim(self) -> int:
        """Take over every queued job; returns how many."""
        for job in queued_jobs(self.index):
            job.update(state="running", pid=os.getpid(), started=_now())
            self.jobs.append(job)
        self._save()
        return len(self.jobs)

    def report(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self._last_write >= REPORT_EVERY or progress.stage == "done":
            self._last_write = now
            for job in self.jobs:
                job["progress"] = asdict(progress)
            self._save()

    def finish(self, manifest: dict) -> None:
        indexed = manifest["corpus"]["files"]
        skipped = {s["path"]: s["reason"] for s in manifest["skipped"]}
        for job in self.jobs:
            job.update(state="done", finished=_now(), result={
                "build_id": manifest["build_id"],
                "files": {doc_id: _outcome(doc_id, job["kind"], indexed, skipped) for doc_id in job["files"]},
            })
        self._save()
        self._prune()

    def fail(self, reason: str) -> None:
        for job in self.jobs:
            job.update(state="failed", finished=_now(), error=reason)
        self._save()

    def _save(self) -> None:
        for job in self.jobs:
            _write(jobs_dir(self.index) / f"{job['id']}.json", job)

    def _prune(self) -> None:
        finished = sorted(jobs_dir(self.index).glob("*.json"), key=lambda p: p.stat().st_mtime)
        for path in finished[:-KEEP_FINISHED]:
            job = read_job(self.index, path.stem)
            if job is not None and job["state"] in ("done", "failed"):
                path.unlink(missing_ok=True)


def _outcome(doc_id: str, kind: str, indexed: dict, skipped: dict) -> dict:
    if doc_id in indexed:
        return {"status": "indexed"}
    if doc_id in skipped:
        return {"status": "skipped", "reason": skipped[doc_id]}
    return {"status": "deleted" if kind == "delete" else "missing"}
