"""The query path over HTTP: gunicorn on loopback serving an index, latency with one client and
throughput with several, each run bounded by a request count and a duration."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmarks.loadgen import Client, Tally, ask_phases, phase_means_ms, run_clients, serving, worker_rss

CLIENTS = (1, 4, 8)
LATENCY_REQUESTS = 400  # one client, one request at a time: the latency percentiles
LOAD_REQUESTS = 2400  # per concurrency level, or LOAD_SECONDS, whichever ends first
LOAD_SECONDS = 45


def measure(index_root: Path, questions: list[str], log: Path, clients: tuple[int, ...] = CLIENTS,
            raw_rate: Callable[[], float] | None = None, raw_single: Callable[[], float] | None = None,
            **env: str) -> dict:
    """`env`: the service's settings beyond QA_INDEX (QA_MILVUS_URI to serve a Milvus collection).
    `raw_rate`: the raw encoder's questions/s at the batch size of the most clients, measured again right before
    and right after their run (the worker idle), so that their ratio compares the two under the same spell of
    this shared machine (its speed drifts by 8–15 % within an hour; the floor was measured minutes earlier).
    `raw_single`: the raw encoder's p50 ms for one question, measured the same way around the one-client run.

    Throughput is measured with the encoder queue unbounded (QA_MAX_WAITING=0), so concurrent questions batch
    and none is refused: what the service can answer, not how it sheds (the overload section, soak.py)."""
    with serving(index_root, log, **{"QA_MAX_WAITING": "0", **env}) as (address, server):
        warm = Client(address)
        for question in questions[:10]:  # the worker warmed itself up at start; this warms the connection path
            warm.ask(question)
        before, single_before = ask_phases(address), raw_single() if raw_single is not None else None
        latency = run_clients(address, questions, 1, LOAD_SECONDS * 2, LATENCY_REQUESTS)
        phases = phase_means_ms(before, ask_phases(address))
        single_around = [single_before, raw_single()] if raw_single is not None else None
        loads, raw_around = {1: latency}, {}
        for count in clients:
            if count > 1:
                bracketed = raw_rate is not None and count == max(clients)
                raw_before = raw_rate() if bracketed else None
                loads[count] = run_clients(address, questions, count, LOAD_SECONDS, LOAD_REQUESTS)
                if bracketed:
                    raw_around[count] = [raw_before, raw_rate()]
        rss = worker_rss(server)
    return {
        "latency": {**_latencies(latency), **({"raw_single_around": single_around} if single_around else {})},
        "phases_ms": phases,  # one client: mean ms per question of encode, search, fusion and total, in the server
        "load": {count: _load(count, tally, raw_around.get(count)) for count, tally in loads.items()},
        "worker_rss_mb": rss / 2**20,
    }


def _load(clients: int, tally: Tally, raw_around: list[float] | None) -> dict:
    row = {"clients": clients, "per_second": tally.per_second, "requests": len(tally.latencies_ms),
           "errors": tally.errors, **_latencies(tally)}
    return row if raw_around is None else {**row, "raw_around": raw_around}


def _latencies(tally: Tally) -> dict[str, float]:
    return {"p50_ms": tally.percentile(0.50), "p95_ms": tally.percentile(0.95), "p99_ms": tally.percentile(0.99)}
