"""The query path over HTTP: gunicorn on loopback serving an index, latency with one client and
throughput with several, each run bounded by a request count and a duration."""
from __future__ import annotations

from pathlib import Path

from benchmarks.loadgen import Client, Tally, ask_phases, phase_means_ms, run_clients, serving, worker_rss

CLIENTS = (1, 4, 8)
LATENCY_REQUESTS = 400  # one client, one request at a time: the latency percentiles
LOAD_REQUESTS = 1200  # per concurrency level, or LOAD_SECONDS, whichever ends first
LOAD_SECONDS = 45


def measure(index_root: Path, questions: list[str], log: Path, clients: tuple[int, ...] = CLIENTS, **env: str) -> dict:
    """`env`: the service's settings beyond QA_INDEX (QA_MILVUS_URI to serve a Milvus collection).

    Throughput is measured with the encoder queue unbounded (QA_MAX_WAITING=0), so concurrent questions batch
    and none is refused: what the service can answer, not how it sheds (the overload section, soak.py)."""
    with serving(index_root, log, **{"QA_MAX_WAITING": "0", **env}) as (address, server):
        warm = Client(address)
        for question in questions[:10]:  # the worker warmed itself up at start; this warms the connection path
            warm.ask(question)
        before = ask_phases(address)
        latency = run_clients(address, questions, 1, LOAD_SECONDS * 2, LATENCY_REQUESTS)
        phases = phase_means_ms(before, ask_phases(address))
        loads = {1: latency}
        for count in clients:
            if count > 1:
                loads[count] = run_clients(address, questions, count, LOAD_SECONDS, LOAD_REQUESTS)
        rss = worker_rss(server)
    return {
        "latency": _latencies(latency),
        "phases_ms": phases,  # one client: mean ms per question of encode, search, fusion and total, in the server
        "load": {count: {"clients": count, "per_second": t.per_second, "requests": len(t.latencies_ms),
                         "errors": t.errors, **_latencies(t)} for count, t in loads.items()},
        "worker_rss_mb": rss / 2**20,
    }


def _latencies(tally: Tally) -> dict[str, float]:
    return {"p50_ms": tally.percentile(0.50), "p95_ms": tally.percentile(0.95), "p99_ms": tally.percentile(0.99)}
