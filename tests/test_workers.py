"""Document workers (indexer/workers.py): a worker that dies costs a retry in a fresh one, not the file."""
from __future__ import annotations

import multiprocessing.spawn
import threading
import time

from indexer.process import ProcessedDocument, Settings
import pytest

from indexer.workers import DocumentWorkers, Task, WorkersFailed

SLOW_TEXT = ("微软与OpenAI的协议价值三百八十亿美元，双方在数据中心上合作多年。" * 40 + "\n\n") * 1200  # ~2.2 s of work


def kill_a_busy_worker(workers: DocumentWorkers, after_seconds: float, killed: list[int]) -> None:
    time.sleep(after_seconds)
    for worker in workers._workers:  # a worker still starting up is not reading: killing it is a failed start
        if worker.task is not None and worker.ready and worker.process.is_alive():
            killed.append(worker.process.pid)
            worker.process.kill()
            return


def test_a_file_whose_worker_was_killed_is_read_again_by_a_fresh_worker() -> None:
    killed: list[int] = []
    with DocumentWorkers(Settings(), processes=1, timeout=120) as workers:
        tasks = [Task("slow.txt", SLOW_TEXT.encode(), "text"), Task("small.txt", "第二份文件。".encode(), "text")]
        threading.Thread(target=kill_a_busy_worker, args=(workers, 3.0, killed), daemon=True).start()  # past start-up
        results = dict((task.doc_id, outcome) for task, outcome in workers.run(tasks))
    assert killed, "the test killed no worker: the file was read before the kill"
    assert isinstance(results["slow.txt"], bytes), results["slow.txt"]
    assert ProcessedDocument.from_bytes(results["small.txt"]).clean_text == "第二份文件。"


def test_a_file_that_kills_its_worker_twice_is_skipped_with_the_reason(monkeypatch) -> None:
    killed: list[int] = []
    with DocumentWorkers(Settings(), processes=1, timeout=120) as workers:
        def killer() -> None:  # kill whichever worker is reading slow.txt, twice
            for _ in range(2):
                before = len(killed)
                while len(killed) == before:
                    kill_a_busy_worker(workers, 0.5, killed)
        threading.Thread(target=killer, daemon=True).start()
        results = dict((task.doc_id, outcome) for task, outcome in workers.run([Task("slow.txt", SLOW_TEXT.encode(), "text")]))
    assert len(killed) == 2
    assert "crashed" in results["slow.txt"] and "twice" in results["slow.txt"]


def test_workers_that_cannot_start_fail_the_run_instead_of_blaming_the_files() -> None:
    executable = multiprocessing.spawn.get_executable()
    multiprocessing.spawn.set_executable("/bin/false")  # every worker exits with 1 at once, as a broken start would
    try:
        with DocumentWorkers(Settings(), processes=1, timeout=60) as workers:
            with pytest.raises(WorkersFailed, match="before it was ready"):
                list(workers.run([Task("a.txt", "第一份文件。".encode(), "text")]))
    finally:
        multiprocessing.spawn.set_executable(executable)
