"""A real gunicorn on a free loopback port, and clients asking it questions over keep-alive connections.

Shared by the soak run (soak.py) and the query benchmark (query.py). Each client is a thread holding one
HTTP/1.1 connection, asking `GET /api/ask` in a loop until its share of `max_requests` is done or
`seconds` have passed, whichever comes first.
"""
from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
READY_WITHIN_SECONDS = 300


_PHASE_LINE = re.compile(r'^qa_ask_seconds_(sum|count)\{phase="(\w+)"\} (\S+)$', re.MULTILINE)
REFUSED = (429, 503)  # rate_limited, overloaded: the client waits about Retry-After, then asks again
# Refused clients wait Retry-After × uniform(0.5, 1.5), as well-behaved clients add jitter to a back-off: with 64
# clients told "1 s" at once, exact waits bring them back in one burst every second (answered p99 105–110 ms vs
# 74 ms jittered, bound 1, make soak) and measure the synchronised herd rather than the service.
RETRY_JITTER = (0.5, 1.5)


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)  # every request
    answered_ms: list[float] = field(default_factory=list)  # the 200s
    refused: int = 0  # 429 and 503
    errors: int = 0  # anything else that is not a 200, connection failures included
    seconds: float = 0.0  # wall time of the whole run
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, latency_ms: float, status: int) -> None:
        with self.lock:
            self.latencies_ms.append(latency_ms)
            if status == 200:
                self.answered_ms.append(latency_ms)
            elif status in REFUSED:
                self.refused += 1
            else:
                self.errors += 1

    @property
    def per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def percentile(self, share: float, answered_only: bool = False) -> float:
        ordered = sorted(self.answered_ms if answered_only else self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(index: Path, log: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """gunicorn (service/gunicorn.conf.py) serving `index` until the block ends; yields (host:port, process)."""
    port = free_port()
    env = {**os.environ, "QA_INDEX": str(index.resolve()), "HOST": "127.0.0.1", "PORT": str(port),
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **env}
    with log.open("wb") as out:
        server = subprocess.Popen([str(GUNICORN), "-c", "service/gunicorn.conf.py", "service:create_app()"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    try:
        wait_until_ready(address, server)
        yield address, server
    finally:
        server.terminate()
        server.wait(timeout=60)


def wait_until_ready(address: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if Client(address).get("/readyz") == 200:
                return
        except OSError:  # not listening yet
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not become ready (exit code {server.poll()})")


def ask_phases(address: str) -> dict[str, tuple[float, float]]:
    """/metrics' qa_ask_seconds by phase (encode, search, fusion, total): (sum of seconds, count) so far."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        text = response.read().decode()
    found: dict[str, list[float]] = {}
    for kind, phase, value in _PHASE_LINE.findall(text):
        found.setdefault(phase, [0.0, 0.0])[kind == "count"] = float(value)
    return {phase: (total, count) for phase, (total, count) in found.items()}


def phase_means_ms(before: dict, after: dict) -> dict[str, float]:
    """Mean milliseconds per question of each phase between two ask_phases snapshots."""
    means = {}
    for phase, (total, count) in after.items():
        earlier_total, earlier_count = before.get(phase, (0.0, 0.0))
        if count > earlier_count:
            means[phase] = 1000 * (total - earlier_total) / (count - earlier_count)
    return means


def worker_rss(server: subprocess.Popen) -> int:
    """Resident memory of the worker processes, which hold the model and index."""
    return sum(worker.memory_info().rss for worker in psutil.Process(server.pid).children())


class Client:
    """One keep-alive connection; reconnects after a failure.

    A plain socket reading responses framed by Content-Length, as the service sends them, not http.client: its
    header parsing (email.parser) cost 0.29 ms of CPU a request against 0.11 (8 clients asking the datasets
    index), CPU the load generator takes from the two cores it shares with the server it measures."""

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.address, self._peer = address, (host, int(port))
        self._socket: socket.socket | None = None
        self.retry_after = 0.0  # the last response's Retry-After, in seconds

    def get(self, path: str) -> int:
        if self._socket is None:
            self._socket = socket.create_connection(self._peer, timeout=60)
        try:
            self._socket.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.address}\r\n\r\n".encode("ascii"))
            status, headers = self._response()
        except (OSError, ValueError):
            self._close()
            raise
        self.retry_after = float(headers.get("retry-after") or 0)
        if headers.get("connection", "").lower() == "close":
            self._close()
        return status

    def ask(self, question: str) -> int:
        """The status of `GET /api/ask?q=question`; 0 when the connection failed."""
        try:
            return self.get(f"/api/ask?{urllib.parse.urlencode({'q': question})}")
        except (OSError, ValueError):
            return 0

    def _response(self) -> tuple[int, dict[str, str]]:
        """The status and headers (names lower-cased) of the next response, its body read and dropped."""
        data = b""
        while b"\r\n\r\n" not in data:
            data += self._receive()
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        if "content-length" not in headers:
            raise ValueError(f"a response without Content-Length: {status_line}")
        remaining = int(headers["content-length"]) - len(body)
        while remaining > 0:
            remaining -= len(self._receive())
        return int(status_line.split()[1]), headers

    def _receive(self) -> bytes:
        assert self._socket is not None
        chunk = self._socket.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def _close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._socket = None


def run_clients(address: str, questions: list[str], clients: int, seconds: float, max_requests: int) -> Tally:
    """`clients` threads asking `questions` in turn (each from its own offset) for at most `seconds`
    or `max_requests` requests in all; a refused client waits about the Retry-After it was given."""
    tally, stop_at = Tally(), time.monotonic() + seconds
    share = -(-max_requests // clients)

    def client(offset: int) -> None:
        connection = Client(address)
        for i in range(offset, offset + share):
            if time.monotonic() >= stop_at:
                break
            started = time.perf_counter()
            status = connection.ask(questions[i % len(questions)])
            tally.record((time.perf_counter() - started) * 1000, status)
            if status in REFUSED:
                time.sleep(max(0.0, min(connection.retry_after * random.uniform(*RETRY_JITTER), stop_at - time.monotonic())))

    threads = [threading.Thread(target=client, args=(n * len(questions) // clients,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tally.seconds = time.perf_counter() - started
    return tally
