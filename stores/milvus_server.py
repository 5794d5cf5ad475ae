"""A local Milvus Lite server in a subprocess, for tests, evals and benchmarks.

`milvus-lite server` holds an exclusive lock on its data folder, so one process serves a folder; clients reach it
over gRPC at `.uri`, exactly as they would reach a Milvus cluster. `stop()` then `start()` again on the same folder
and port simulates an outage.
"""
from __future__ import annotations

import atexit
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

READY_WITHIN_SECONDS = 60.0
STOP_WITHIN_SECONDS = 10.0
LOG_TAIL_CHARS = 3000


class MilvusServerError(RuntimeError):
    """The server did not start (its log tail is in the message)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def milvus_lite_command() -> Path:
    """The milvus-lite console script beside this interpreter (the venv's)."""
    return Path(sys.executable).parent / "milvus-lite"


class MilvusServer:
    """`with MilvusServer(folder) as server: MilvusClient(server.uri)`; stops the server when the block ends."""

    def __init__(self, data_dir: Path, port: int | None = None, ready_within: float = READY_WITHIN_SECONDS) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.ready_within = ready_within
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.milvus.log"
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> MilvusServer:
        """Start the server and wait until it answers; MilvusServerError (with its log) if it does not."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [str(milvus_lite_command()), "server", "--data-dir", str(self.data_dir),
                   "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        atexit.register(self.stop)  # no server outlives the process that started it, whatever happens
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.ready_within
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise MilvusServerError(f"milvus-lite exited with {self._process.returncode}:\n{self.log_tail()}")
            if self._answers():
                return
            time.sleep(0.2)
        self.stop()
        raise MilvusServerError(f"milvus-lite did not answer on {self.uri} within {self.ready_within:.0f} s:\n"
                                f"{self.log_tail()}")

    def _answers(self) -> bool:
        """A gRPC round trip (not just an open port: the port opens before the servicer is ready)."""
        import grpc
        from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            try:
                milvus_pb2_grpc.MilvusServiceStub(channel).GetVersion(milvus_pb2.GetVersionRequest(), timeout=1.0)
                return True
            except grpc.RpcError:
                return False

    def stop(self) -> None:
        """Interrupt (a clean shutdown that releases the folder's lock), then terminate, then kill."""
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a stopped (paused) process cannot act on SIGINT
        for send in (lambda: process.send_signal(signal.SIGINT), process.terminate, process.kill):
            send()
            try:
                process.wait(timeout=STOP_WITHIN_SECONDS / 2)
                return
            except subprocess.TimeoutExpired:
                continue
        process.wait()

    def signal(self, number: int) -> None:
        """Send the server a signal (SIGSTOP / SIGCONT simulate a hung server)."""
        if self.running:
            self._process.send_signal(number)

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> MilvusServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.stop()
