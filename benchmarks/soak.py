"""Soak and overload: gunicorn on a free loopback port, N clients asking for a fixed time; latency, refusals,
errors, the deepest encoder queue seen and the worker's memory growth. Not part of `make test` (`make soak`,
and the "overload" section of `make bench`; benchmarks/README.md).

    PYTHONPATH=. .venv/bin/python -m benchmarks.soak [--index index] [--seconds 60] [--clients 8]
        [--compare-bound]

--compare-bound is the overload table: one client as the reference, then `--clients` against one worker with
the encoder queue bounded (QA_MAX_WAITING as configured, else the service's default: questions beyond it are
refused at once with 503 and the client waits about Retry-After), bounded at 8, and unbounded
(QA_MAX_WAITING=0: every question waits its turn).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import threading
import urllib.request
from pathlib import Path

from benchmarks.report_sections import OVERLOAD_P99_MAX
from benchmarks.loadgen import Client, Tally, run_clients, serving, worker_rss
from evals.datasets import SEED_QUESTIONS
from service.batching import DEFAULT_MAX_WAITING

OVERLOAD_CLIENTS, REFERENCE_SECONDS = 64, 30


def seed_questions() -> list[str]:
    return [json.loads(line)["question"] for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines() if line]


def soak(index: Path, questions: list[str], clients: int, seconds: float, log: Path, bound: str) -> dict:
    """One run against one worker: the tally's shares and percentiles, the deepest queue, memory growth."""
    threads = {"THREADS": str(max(64, clients))}  # every client reaches the app: the bound, not gunicorn, decides
    with serving(index, log, WEB_CONCURRENCY="1", QA_MAX_WAITING=bound, **threads) as (address, server):
        Client(address).ask(questions[0])
        rss_start = worker_rss(server)
        with QueueWatch(address) as watch:
            tally = run_clients(address, questions, clients, seconds, max_requests=10**9)
        return summary(tally, clients, int(bound), watch.deepest, rss_start, worker_rss(server))


class QueueWatch:
    """Samples /metrics' qa_encode_queue_depth every 50 ms while the block runs; `deepest` is the largest seen."""

    def __init__(self, address: str) -> None:
        self.url, self.deepest, self._stop = f"http://{address}/metrics", 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> QueueWatch:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            with urllib.request.urlopen(self.url, timeout=10) as response:
                found = re.search(r"^qa_encode_queue_depth (\S+)$", response.read().decode(), re.MULTILINE)
            self.deepest = max(self.deepest, float(found.group(1)) if found else 0.0)


def summary(tally: Tally, clients: int, bound: int, deepest: float, rss_start: int, rss_end: int) -> dict:
    total, answered = len(tally.latencies_ms), len(tally.answered_ms)
    return {"clients": clients, "bound": bound, "seconds": tally.seconds,
            "requests": total, "answered": answered, "refused": tally.refused, "errors": tally.errors,
            "answered_per_second": answered / tally.seconds,
            **{f"answered_p{p}_ms": tally.percentile(p / 100, True) for p in (50, 95, 99)},
            "answered_max_ms": max(tally.answered_ms, default=float("nan")), "deepest_queue": deepest,
            "rss_start_mb": rss_start / 2**20, "rss_end_mb": rss_end / 2**20}


def configured_bound() -> str:
    return os.environ.get("QA_MAX_WAITING", str(DEFAULT_MAX_WAITING))


def overload(index: Path, questions: list[str], clients: int = OVERLOAD_CLIENTS, seconds: float = 60) -> dict:
    """The reference (one client, bound as configured), then `clients` bounded as configured, at 8, and off."""
    configured = configured_bound()
    bounds = list(dict.fromkeys([configured, "8", "0"]))
    log = Path(f"/tmp/soak-gunicorn-{os.getpid()}.log")
    runs = [soak(index, questions, 1, min(seconds, REFERENCE_SECONDS), log, configured)]
    runs += [soak(index, questions, clients, seconds, log, bound) for bound in bounds]
    return {"index": str(index), "configured_bound": int(configured), "runs": runs}


def describe(run: dict) -> str:
    bound = run["bound"] or "none"
    return (f"{run['clients']} clients, bound {bound}: {run['requests']} requests in {run['seconds']:.0f} s, "
            f"answered {run['answered'] / run['requests']:.1%} ({run['answered_per_second']:.1f}/s), refused "
            f"{run['refused']}, errors {run['errors']}; answered ms p50 {run['answered_p50_ms']:.0f} p95 "
            f"{run['answered_p95_ms']:.0f} p99 {run['answered_p99_ms']:.0f} max {run['answered_max_ms']:.0f}; "
            f"deepest queue {run['deepest_queue']:.0f}; worker RSS {run['rss_start_mb']:.0f} → "
            f"{run['rss_end_mb']:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("index"))
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--compare-bound", action="store_true",
                        help="one client, then --clients bounded as configured, at 8 and unbounded")
    args = parser.parse_args()
    if args.compare_bound:
        runs = overload(args.index, seed_questions(), args.clients, args.seconds)["runs"]
    else:
        log = Path(f"/tmp/soak-gunicorn-{os.getpid()}.log")
        runs = [soak(args.index, seed_questions(), args.clients, args.seconds, log, configured_bound())]
    for run in runs:
        print(describe(run))
    if args.compare_bound:
        ratio = runs[1]["answered_p99_ms"] / runs[0]["answered_p99_ms"]
        print(f"answered p99 at {args.clients} clients, bound as configured: {ratio:.1f}× one client's "
              f"(aim ≤ {OVERLOAD_P99_MAX:g}×)")


if __name__ == "__main__":
    main()
