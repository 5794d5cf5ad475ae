"""Process files in child processes, each under a time limit, so that no file can hang or crash a build.

PDF and Word parsing runs C code (PDFium, libxml2) and OCR runs Tesseract on files from anywhere: a file
that overruns its time is skipped with that reason and its worker killed and replaced. A worker that dies
while reading a file (a crash inside a library, or killed for memory) is replaced and the file read once more
by the new one; only a second death costs the file. A worker that dies before it is ready (it could not even
start) is no fault of the file: the build fails with WorkersFailed instead of skipping every file. Workers are
spawned, not forked: the parent may hold torch's threads, which a fork does not survive. Results come back as
they finish, not in submission order.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from extract import ExtractionError
from indexer.process import Settings, process

DEFAULT_TIMEOUT = 300.0
TIMEOUT_VARIABLE = "QA_FILE_TIMEOUT"


@dataclass(frozen=True)
class Task:
    doc_id: str
    data: bytes
    format: str


def file_timeout(seconds: float | None = None) -> float:
    value = seconds if seconds is not None else float(os.environ.get(TIMEOUT_VARIABLE) or DEFAULT_TIMEOUT)
    if value <= 0:
        raise ValueError(f"the per-file time limit must be a positive number of seconds, not {value}")
    return value


class WorkersFailed(RuntimeError):
    """A document worker died before it was ready: the environment, not a file, is at fault."""


def _serve(conn: Connection, settings: Settings) -> None:
    """A worker: say ("ready", None) once started, then process each (data, format) it receives and answer
    ("ok", bytes) or ("skip", reason)."""
    conn.send(("ready", None))
    while True:
        try:
            data, format = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", process(data, format, settings).to_bytes()))
        except ExtractionError as error:
            conn.send(("skip", str(error)))
        except Exception as error:  # a library failing on a malformed file: skip it, keep the worker
            conn.send(("skip", f"could not be read: {type(error).__name__}: {error}"))


class _Worker:
    def __init__(self, context: multiprocessing.context.BaseContext, settings: Settings) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, settings), daemon=True)
        self.process.start()
        child.close()
        self.task: Task | None = None
        self.deadline = 0.0
        self.ready = False

    def start(self, task: Task, timeout: float) -> None:
        self.task, self.deadline = task, time.monotonic() + timeout
        try:
            self.conn.send((task.data, task.format))
        except OSError:  # the worker is already gone: _collect reads its end (EOF) and says why
            pass

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()


@dataclass(frozen=True)
class _Crash:
    exit_code: int | None

    def __str__(self) -> str:
        return f"the extractor crashed on this file twice (exit code {self.exit_code})"


class DocumentWorkers:
    """Up to `processes` workers, started when the first file needs one (a build whose files all come from the
    cache starts none)."""

    def __init__(self, settings: Settings, processes: int = 2, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._settings, self._timeout, self._processes = settings, timeout, max(1, processes)
        self._workers: list[_Worker] = []

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, bytes | str]]:
        """(task, its ProcessedDocument.to_bytes()) or (task, reason it was skipped), as each file finishes."""
        pending = iter(tasks)
        busy: list[_Worker] = []
        idle = list(self._workers)
        exhausted = False
        again: list[Task] = []  # files whose worker died once: read again by a fresh worker
        crashed: set[str] = set()
        while busy or again or not exhausted:
            while (again or not exhausted) and (idle or len(self._workers) < self._processes):
                task = again.pop() if again else next(pending, None)
                if task is None:
                    exhausted = True
                    break
                worker = idle.pop() if idle else self._start_worker()
                worker.start(task, self._timeout)
                busy.append(worker)
            if not busy:
                break
            ready = wait([w.conn for w in busy], timeout=max(0.0, min(w.deadline for w in busy) - time.monotonic()))
            for worker in list(busy):
                result = self._collect(worker, ready)
                if result is None:
                    continue
                busy.remove(worker)
                idle.append(self._replace_if_dead(worker))
                task, outcome = result
                if isinstance(outcome, _Crash) and task.doc_id not in crashed:
                    crashed.add(task.doc_id)
                    again.append(task)
                    continue
                yield task, (str(outcome) if isinstance(outcome, _Crash) else outcome)

    def _collect(self, worker: _Worker, ready: list) -> tuple[Task, bytes | str | _Crash] | None:
        task = worker.task
        assert task is not None
        while worker.conn in ready and (not worker.ready or worker.conn.poll()):
            try:
                status, payload = worker.conn.recv()
            except (EOFError, OSError):
                worker.process.join()
                if not worker.ready:
                    raise WorkersFailed(f"a document worker exited with code {worker.process.exitcode} before it "
                                        "was ready (it could not start; its error is on stderr)") from None
                return task, _Crash(worker.process.exitcode)
            if status == "ready":
                worker.ready = True
                continue
            return task, payload  # "ok": the document's bytes, stored as they came (decoding them costs as much)
        if time.monotonic() >= worker.deadline:
            worker.kill()
            return task, f"took longer than the per-file limit of {self._timeout:g} s ({TIMEOUT_VARIABLE})"
        return None

    def _start_worker(self) -> _Worker:
        worker = _Worker(self._context, self._settings)
        self._workers.append(worker)
        return worker

    def _replace_if_dead(self, worker: _Worker) -> _Worker:
        if worker.process.is_alive():
            return worker
        worker.conn.close()
        replacement = _Worker(self._context, self._settings)
        self._workers[self._workers.index(worker)] = replacement
        return replacement

    def close(self) -> None:
        for worker in self._workers:
            worker.kill()

    def __enter__(self) -> DocumentWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
