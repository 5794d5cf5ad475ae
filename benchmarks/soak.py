"""Soak test: gunicorn on a free loopback port, N clients asking for a fixed time; latency, refusals, errors
and the worker's memory growth. Not part of `make test` (`make soak`; benchmarks/README.md).

    PYTHONPATH=. .venv/bin/python -m benchmarks.soak [--index index] [--seconds 60] [--clients 8]
        [--compare-bound]

--compare-bound runs twice against one worker: with the encoder queue bounded (QA_MAX_WAITING, default 8:
questions beyond it are refused at once with 503 and the client waits Retry-After) and unbounded
(QA_MAX_WAITING=0: every question waits its turn), and prints the two side by side.
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
    total = len(tally.latencies_ms)
    answered = tally.answered_ms or [float("nan")]
    return "\n".join([
        f"requests   {total} in {tally.seconds:.0f} s ({tally.per_second:.1f}/s): answered {len(tally.answered_ms)} "
        f"({len(tally.answered_ms) / total:.1%}, {len(tally.answered_ms) / tally.seconds:.1f}/s), "
        f"refused {tally.refused} ({tally.refused / total:.1%}), errors {tally.errors}",
        f"answered ms p50 {tally.percentile(0.50, True):.0f}  p95 {tally.percentile(0.95, True):.0f}  "
        f"p99 {tally.percentile(0.99, True):.0f}  max {max(answered):.0f}  mean {statistics.fmean(answered):.0f}",
        f"worker RSS {rss_start / 2**20:.0f} MiB at start, {rss_end / 2**20:.0f} MiB at end ({growth:+.1f} %)",
    ])


def soak(index: Path, questions: list[str], clients: int, seconds: float, log: Path, **env: str) -> str:
    threads = {"THREADS": str(max(64, clients))}  # every client reaches the app: the bound, not gunicorn, decides
    with serving(index, log, WEB_CONCURRENCY="1", **threads, **env) as (address, server):
        Client(address).ask(questions[0])
        rss_start = worker_rss(server)
        tally = run_clients(address, questions, clients, seconds, max_requests=10**9)
        return report(tally, rss_start, worker_rss(server))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("index"))
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--compare-bound", action="store_true",
                        help="run bounded (QA_MAX_WAITING, default 8) and unbounded (0), side by side")
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line]
    bound = os.environ.get("QA_MAX_WAITING", "8")
    runs = {f"bound {bound}": bound, "no bound": "0"} if args.compare_bound else {f"bound {bound}": bound}
    for name, max_waiting in runs.items():
        log = Path(f"/tmp/soak-gunicorn-{os.getpid()}-{max_waiting}.log")
        print(f"--- {name}: {args.clients} clients, {args.seconds:.0f} s, one worker")
        print(soak(args.index, questions, args.clients, args.seconds, log, QA_MAX_WAITING=max_waiting))
        print(f"server log: {log}")


if __name__ == "__main__":
    main()
