"""One bounded, recoverable connection to a Milvus server.

Every call carries a deadline (the location's timeout), and any failure to reach or read the server becomes
StoreUnavailable with a one-line reason, never a hang or a raw gRPC traceback. The client is made lazily and
made again after a failure, so an object outlives a server restart: after the server comes back, the next
call works.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import grpc
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from stores.contract import StoreUnavailable

T = TypeVar("T")
log = logging.getLogger(__name__)
# pymilvus logs every failed RPC at ERROR with a traceback; our StoreUnavailable carries the reason instead
logging.getLogger("pymilvus").setLevel(logging.CRITICAL)

# gRPC waits up to 2 minutes between reconnection attempts by default, so a client that saw the server down
# would keep failing long after it came back; these keep that wait under half a second
GRPC_OPTIONS = {
    "grpc.initial_reconnect_backoff_ms": 200,
    "grpc.min_reconnect_backoff_ms": 200,
    "grpc.max_reconnect_backoff_ms": 500,
}
RECONNECT_WITHIN_SECONDS = 1.0  # a call that fails to connect tries a fresh channel for this long
RETRY_PAUSE_SECONDS = 0.2


class Connection:
    """A MilvusClient for `uri`, made on first use; `call` runs one request within `timeout` seconds."""

    def __init__(self, uri: str, token: str = "", timeout: float = 5.0) -> None:
        self.uri = uri
        self.token = token
        self.timeout = timeout
        self._client: MilvusClient | None = None
        self._lock = threading.Lock()

    def call(self, what: str, request: Callable[[MilvusClient, float], T], collection: str | None = None) -> T:
        """`request(client, seconds_left)`; StoreUnavailable("cannot <what> …") if Milvus does not answer.

        A request that finds `collection` released (a restarted Milvus Lite does not reload its collections)
        loads it and runs again, within the same deadline."""
        deadline = time.monotonic() + self.timeout
        retry_until = time.monotonic() + min(RECONNECT_WITHIN_SECONDS, self.timeout / 2)
        loaded = False
        while True:
            try:
                return request(self._connected(deadline), _left(deadline))
            except (MilvusException, grpc.RpcError, OSError, StoreUnavailable) as error:
                reason = _reason(error)
                if _unreachable(error):
                    self.reset()
                    if time.monotonic() + RETRY_PAUSE_SECONDS < retry_until:
                        time.sleep(RETRY_PAUSE_SECONDS)
                        continue
                elif collection is not None and not loaded and _not_loaded(error):
                    loaded = True
                    self.call(f"load {collection}", lambda client, seconds: client.load_collection(
                        collection, timeout=_left(deadline)))
                    continue
                raise StoreUnavailable(f"cannot {what} at Milvus {self.uri}: {reason}") from None

    def _connected(self, deadline: float) -> MilvusClient:
        with self._lock:
            if self._client is None:
                seconds = max(min(deadline - time.monotonic(), self.timeout), 0.05)
                self._client = MilvusClient(uri=self.uri, token=self.token, timeout=seconds, dedicated=True,
                                            grpc_options=GRPC_OPTIONS)
            return self._client

    def reset(self) -> None:
        """Forget the client (its channel may be stuck): the next call makes a new one."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            _close_quietly(client)

    def close(self) -> None:
        self.reset()


def _close_quietly(client: MilvusClient) -> None:
    try:
        client.close()
    except Exception as error:  # closing a broken channel must not mask the error being reported
        log.debug("closing a Milvus client failed: %s", error)


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.05)


def _not_loaded(error: BaseException) -> bool:
    """Milvus: code 101 "collection not loaded"; Milvus Lite: "… is in state 'released'; call load() …"."""
    text = str(getattr(error, "message", error)).lower()
    return getattr(error, "code", None) == 101 or "not loaded" in text or "call load()" in text


def _unreachable(error: BaseException) -> bool:
    """A failure to reach the server (worth a fresh channel), not an answer the server gave."""
    if isinstance(error, grpc.RpcError):
        return error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    if isinstance(error, MilvusException):
        text = str(error.message).lower()
        return error.code == 2 or any(w in text for w in ("unavailable", "connect", "deadline", "timeout"))
    return isinstance(error, (OSError, StoreUnavailable))


def _reason(error: BaseException) -> str:
    if isinstance(error, MilvusException):
        return str(error.message) or f"error code {error.code}"
    if isinstance(error, grpc.RpcError):
        return f"{error.code().name}: {error.details()}"
    return str(error) or type(error).__name__
