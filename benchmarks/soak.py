"""Soak test: gunicorn on a free loopback port, N clients asking for a fixed time; latency, errors and the
worker's memory growth. Not part of `make test` (`make soak`; benchmarks/README.md).

    .venv/bin/python benchmarks/soak.py [--index index] [--seconds 60] [--clients 8]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "evals" / "seed_questions.jsonl"
GUNICORN = Path(sys.executable).parent / "gunicorn"
READY_WITHIN_SECONDS = 180


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, latency_ms: float, ok: bool) -> None:
        with self.lock:
            self.latencies_ms.append(latency_ms)
            self.errors += not ok


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(index: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "QA_INDEX": str(index), "HOST": "127.0.0.1", "PORT": str(port),
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with log.open("wb") as out:
        return subprocess.Popen([str(GUNICORN), "-c", "service/gunicorn.conf.py", "service:create_app()"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_until_ready(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=10):
                return
        except OSError:  # not listening yet, or 503
            time.sleep(0.5)
    raise SystemExit(f"the server did not become ready (exit code {server.poll()})")


def worker_rss(server: subprocess.Popen) -> int:
    """Resident memory of the (single) worker, the process that holds the model and index."""
    workers = psutil.Process(server.pid).children()
    return sum(worker.memory_info().rss for worker in workers)


def ask(base: str, question: str) -> bool:
    url = f"{base}/api/ask?{urllib.parse.urlencode({'q': question})}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
            return response.status == 200
    except OSError:
        return False


def client(base: str, questions: list[str], offset: int, stop_at: float, tally: Tally) -> None:
    i = offset
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        ok = ask(base, questions[i % len(questions)])
        tally.record((time.perf_counter() - started) * 1000, ok)
        i += 1


def run_load(base: str, questions: list[str], clients: int, seconds: float) -> Tally:
    tally, stop_at = Tally(), time.monotonic() + seconds
    threads = [threading.Thread(target=client, args=(base, questions, n * 7, stop_at, tally)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def report(tally: Tally, seconds: float, rss_start: int, rss_end: int) -> str:
    latencies = sorted(tally.latencies_ms)
    growth = (rss_end - rss_start) / rss_start * 100
    return "\n".join([
        f"requests   {len(latencies)} in {seconds:.0f} s ({len(latencies) / seconds:.1f}/s), errors {tally.errors}",
        f"latency ms p50 {percentile(latencies, 0.50):.0f}  p95 {percentile(latencies, 0.95):.0f}  "
        f"p99 {percentile(latencies, 0.99):.0f}  max {latencies[-1]:.0f}  mean {statistics.fmean(latencies):.0f}",
        f"worker RSS {rss_start / 2**20:.0f} MiB at start, {rss_end / 2**20:.0f} MiB at end ({growth:+.1f} %)",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("index"))
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line]
    port, log = free_port(), Path(f"/tmp/soak-gunicorn-{os.getpid()}.log")
    server = start_server(args.index.resolve(), port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, server)
        ask(base, questions[0])  # first answer loads lazy parts (jieba); measure from a warm worker
        rss_start = worker_rss(server)
        tally = run_load(base, questions, args.clients, args.seconds)
        print(report(tally, args.seconds, rss_start, worker_rss(server)))
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(f"server log: {log}")


if __name__ == "__main__":
    main()
