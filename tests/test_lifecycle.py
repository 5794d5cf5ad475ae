"""Index hot-swap under load: a build published while gunicorn answers is picked up with no failed request."""
from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import CORPUS, ROOT, serving
from stores import index_dir
from indexer.build import build_index
from test_gunicorn import request

NEW_DOCUMENT = "zorvath.txt"
NEW_TEXT = ("Zorvath Island lighthouse\n\nThe lighthouse keeper on Zorvath Island counts exactly 4817 seagulls "
            "every Tuesday morning and writes the number in a green ledger.\n")
QUESTION = "How many seagulls does the lighthouse keeper on Zorvath Island count?"
CLIENTS = 8
MAX_REQUESTS_PER_CLIENT = 400
LOAD_SECONDS_AFTER_SWAP = 2.0
SWAP_WITHIN_SECONDS = 30
BUILD_WITHIN_SECONDS = 180


def _load(base: str, stop: threading.Event, deadline: float) -> Counter:
    """Ask questions until told to stop (or the deadline or request budget runs out); count the outcomes."""
    outcomes: Counter = Counter()
    questions = ["微软为什么要拯救OpenAI？", "How much is the AWS deal worth?", QUESTION, "英伟达 AI 芯片"]
    for i in range(MAX_REQUESTS_PER_CLIENT):
        if stop.is_set() or time.monotonic() > deadline:
            break
        try:
            outcomes[request(f"{base}/api/ask", {"question": questions[i % len(questions)], "top_k": 3})[0]] += 1
        except (OSError, ValueError) as error:  # refused connection, reset, a body that is not JSON
            outcomes[type(error).__name__] += 1
    return outcomes


def _wait_for_build(base: str, build_id: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < SWAP_WITHIN_SECONDS:
        if request(f"{base}/readyz")[2].get("index") == build_id:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"the server did not switch to {build_id} within {SWAP_WITHIN_SECONDS} s")


def test_a_build_published_under_load_is_served_without_a_failed_request(tmp_path: Path, embedder) -> None:
    corpus, root = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(CORPUS, corpus)
    first = build_index(corpus, root, embedder, progress=False).manifest["build_id"]
    (corpus / NEW_DOCUMENT).write_text(NEW_TEXT, encoding="utf-8")
    with serving(root, tmp_path / "gunicorn.log", QA_RELOAD_SECONDS="0.5", QA_MAX_WAITING="16") as base:
        assert request(f"{base}/readyz")[2]["index"] == first
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            deadline = time.monotonic() + BUILD_WITHIN_SECONDS + SWAP_WITHIN_SECONDS
            clients = [pool.submit(_load, base, stop, deadline) for _ in range(CLIENTS)]
            try:
                rebuild = subprocess.run(
                    [sys.executable, "-m", "indexer", "build", "--corpus", str(corpus), "--index", str(root), "--quiet"],
                    cwd=ROOT, capture_output=True, text=True, timeout=BUILD_WITHIN_SECONDS,
                )
                assert rebuild.returncode == 0, rebuild.stdout + rebuild.stderr
                second = index_dir.read_manifest(index_dir.current_build(root))["build_id"]
                swap_seconds = _wait_for_build(base, second)
                time.sleep(LOAD_SECONDS_AFTER_SWAP)  # keep the load on across and after the switch
            finally:
                stop.set()
            outcomes = sum((client.result() for client in clients), Counter())
        print(f"\nhot swap: {sum(outcomes.values())} requests, outcomes {dict(outcomes)}, "
              f"{first} -> {second} served {swap_seconds:.2f} s after the build was published")
        assert second != first and set(outcomes) == {200} and outcomes[200] >= CLIENTS
        status, _, answer = request(f"{base}/api/ask", {"question": QUESTION, "top_k": 3})
        assert status == 200 and answer["passages"][0]["doc_id"] == NEW_DOCUMENT
