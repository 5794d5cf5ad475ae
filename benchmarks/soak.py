"""Soak test: gunicorn on a free loopback port, N clients asking for a fixed time; latency, errors and the
worker's memory growth. Not part of `make test` (`make soak`; benchmarks/README.md).

    PYTHONPATH=. .venv/bin/python -m benchmarks.soak [--index index] [--seconds 60] [--clients 8]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from benchmarks.loadgen import ROOT, Client, Tally, run_clients, serving, worker_rss

QUESTIONS = ROOT / "evals" / "seed_questions.jsonl"


def report(tally: Tally, rss_start: int, rss_end: int) -> str:
    growth = (rss_end - rss_start) / rss_start * 100
    return "\n".join([
        f"requests   {len(tally.latencies_ms)} in {tally.seconds:.0f} s ({tally.per_second:.1f}/s), "
        f"errors {tally.errors}",
        f"latency ms p50 {tally.percentile(0.50):.0f}  p95 {tally.percentile(0.95):.0f}  "
        f"p99 {tally.percentile(0.99):.0f}  max {max(tally.latencies_ms):.0f}  "
        f"mean {statistics.fmean(tally.latencies_ms):.0f}",
        f"worker RSS {rss_start / 2**20:.0f} MiB at start, {rss_end / 2**20:.0f} MiB at end ({growth:+.1f} %)",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("index"))
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line]
    log = Path(f"/tmp/soak-gunicorn-{os.getpid()}.log")
    with serving(args.index, log) as (address, server):
        Client(address).ask(questions[0])
        rss_start = worker_rss(server)
        tally = run_clients(address, questions, args.clients, args.seconds, max_requests=10**9)
        print(report(tally, rss_start, worker_rss(server)))
    print(f"server log: {log}")


if __name__ == "__main__":
    main()
