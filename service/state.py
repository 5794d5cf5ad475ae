"""The retriever a worker process answers with, or the reason it has none.

Requests read `state.current` once and use that snapshot throughout: a plain attribute read, no lock.
Writers (the load at start-up, a reload after `python -m indexer build` published a new build) replace the
snapshot in one assignment, serialized by a lock so that a slow load cannot overwrite a newer swap's result.

Reloads: `maybe_reload` runs before every request and costs one clock read until `reload_seconds` have
passed; then it asks the store location which build is published (INDEX/current's target, or the Milvus
collection's build id) and, if it moved, opens the new build in a background thread (one at a time) with the
embedder already loaded. A new build that is
damaged or made with another model is refused with a log line and the previous one keeps serving.
Old builds may later be deleted by publishes: FAISS and BM25 are in memory (or mmapped, which survives an
unlink on Linux); the passage store opens SQLite per thread, but requests take `current` afresh, so only
requests already in flight use an old snapshot, and a publish keeps the previous build (KEEP_PREVIOUS_BUILDS).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from indexer.embedding import Encoder, ModelMissingError
from service.retrieval import Retriever, load_retriever, retriever_for
from stores.contract import IndexUnusable, StoreLocation, StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    retriever: Retriever | None
    reason: str  # why there is no retriever; "" when there is one


class RetrieverState:
    def __init__(self, location: StoreLocation | None = None, model: str | None = None, reload_seconds: float = 0) -> None:
        self.current = Snapshot(None, "the index has not been loaded")
        self.location, self.model, self.reload_seconds = location, model, reload_seconds
        self._write_lock = threading.RLock()
        self._reloading = threading.Lock()  # held by the one reload thread running, if any
        self._next_check = 0.0
        self._seen: str | None = None  # the build published when last looked at

    def load(self, location: StoreLocation, model: str | None) -> None:
        """Load the index and its model; on failure keep serving 503 with the reason instead of crashing."""
        self.location, self.model = location, model
        with self._write_lock:
            try:
                self._seen = location.published()
                retriever = load_retriever(location, model)
            except (IndexUnusable, ModelMissingError, StoreUnavailable) as error:
                self._unavailable(str(error))
            except Exception as error:  # a broken model folder, a damaged file: say so on /readyz, keep running
                log.exception("loading the index at %s failed", location)
                self._unavailable(f"loading the index at {location} failed: {type(error).__name__}: {error}")
            else:
                retriever.warm_up()
                self.swap(retriever)

    def swap(self, retriever: Retriever) -> None:
        """Serve `retriever` from the next request on; requests in flight finish with the one they read."""
        with self._write_lock:
            self.current = Snapshot(retriever, "")
        log.info("serving index %s (%d passages)", retriever.build_id, retriever.passage_count)

    def maybe_reload(self) -> None:
        """If due and INDEX/current has moved, start reloading in the background (a before_request hook:
        it must return None)."""
        now = time.monotonic()
        if self.reload_seconds <= 0 or self.location is None or now < self._next_check:
            return
        self._next_check = now + self.reload_seconds
        if self._reloading.acquire(blocking=False):  # the look itself may wait on a store server: in the background
            threading.Thread(target=self._reload_holding_lock, name="index-reload", daemon=True).start()

    def reload(self) -> None:
        """Open INDEX/current now and serve it if it is usable (and not already served)."""
        with self._reloading:
            self._reload()

    def _reload_holding_lock(self) -> None:
        try:
            if self._published() != self._seen:
                self._reload()
        finally:
            self._reloading.release()

    def _published(self) -> str | None:
        assert self.location is not None
        try:
            return self.location.published()
        except StoreUnavailable as error:  # keep serving what is loaded; asks report the outage themselves
            log.warning("cannot see which build is published: %s", error)
            return self._seen

    def _reload(self) -> None:
        assert self.location is not None
        embedder = self._embedder()
        if embedder is None:  # nothing loaded yet (no model, no index at start-up): try the whole load again
            self.load(self.location, self.model)
            return
        self._seen = target = self._published()
        started = time.perf_counter()
        try:
            retriever = retriever_for(self.location, embedder)
        except Exception as error:  # IndexUnusable, or anything a damaged file raises: keep the old build
            self._refuse(target, error)
            return
        self.swap(retriever)
        log.info("switched to index %s in %.2f s", retriever.build_id, time.perf_counter() - started)

    def _embedder(self) -> Encoder | None:
        retriever = self.current.retriever
        return retriever.embedder if retriever is not None else None

    def _refuse(self, target: str | None, error: Exception) -> None:
        serving = self.current.retriever
        reason = str(error) if isinstance(error, IndexUnusable) else f"{type(error).__name__}: {error}"
        if serving is None:
            self._unavailable(reason)
        else:
            log.error("refusing the new index %s, still serving %s: %s", target, serving.build_id, reason)

    def _unavailable(self, reason: str) -> None:
        log.error("no usable index, answering 503: %s", reason)
        self.current = Snapshot(None, reason)

