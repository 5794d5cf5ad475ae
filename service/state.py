"""The retriever a worker process answers with, or the reason it has none.

Requests read `state.current` once and use that snapshot throughout: a plain attribute read, no lock.
Writers (the load at start-up, a reload after `python -m indexer build` published a new build) replace the
snapshot in one assignment, serialized by a lock so that a slow load cannot overwrite a newer swap's result.

Reloads: `maybe_reload` runs before every request and costs one clock read until `reload_seconds` have
passed; then it compares INDEX/current's target with the build being served and, if it moved, opens the new
build in a background thread (one at a time) with the embedder already loaded. A new build that is
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
from pathlib import Path

from indexer.embedding import Encoder, ModelMissingError
from indexer.index_dir import IndexUnusable, current_build
from service.retrieval import Retriever, load_retriever, retriever_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    retriever: Retriever | None
    reason: str  # why there is no retriever; "" when there is one


class RetrieverState:
    def __init__(self, index_root: Path | None = None, model: str | None = None, reload_seconds: float = 0) -> None:
        self.current = Snapshot(None, "the index has not been loaded")
        self.index_root, self.model, self.reload_seconds = index_root, model, reload_seconds
        self._write_lock = threading.RLock()
        self._reloading = threading.Lock()  # held by the one reload thread running, if any
        self._next_check = 0.0
        self._seen: Path | None = None  # the build INDEX/current pointed at when last looked at

    def load(self, index_root: Path, model: str | None) -> None:
        """Load the index and its model; on failure keep serving 503 with the reason instead of crashing."""
        self.index_root, self.model = index_root, model
        with self._write_lock:
            self._seen = current_build(index_root)
            try:
                retriever = load_retriever(index_root, model)
            except (IndexUnusable, ModelMissingError) as error:
                self._unavailable(str(error))
            except Exception as error:  # a broken model folder, a damaged file: say so on /readyz, keep running
                log.exception("loading the index at %s failed", index_root)
                self._unavailable(f"loading the index at {index_root} failed: {type(error).__name__}: {error}")
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
        if self.reload_seconds <= 0 or self.index_root is None or now < self._next_check:
            return
        self._next_check = now + self.reload_seconds
        if current_build(self.index_root) != self._seen and self._reloading.acquire(blocking=False):
            threading.Thread(target=self._reload_holding_lock, name="index-reload", daemon=True).start()

    def reload(self) -> None:
        """Open INDEX/current now and serve it if it is usable (and not already served)."""
        with self._reloading:
            self._reload()

    def _reload_holding_lock(self) -> None:
        try:
            self._reload()
        finally:
            self._reloading.release()

    def _reload(self) -> None:
        assert self.index_root is not None
        embedder = self._embedder()
        if embedder is None:  # nothing loaded yet (no model, no index at start-up): try the whole load again
            self.load(self.index_root, self.model)
            return
        self._seen = target = current_build(self.index_root)
        started = time.perf_counter()
        try:
            retriever = retriever_for(self.index_root, embedder)
        except Exception as error:  # IndexUnusable, or anything a damaged file raises: keep the old build
            self._refuse(target, error)
            return
        self.swap(retriever)
        log.info("switched to index %s in %.2f s", retriever.build_id, time.perf_counter() - started)

    def _embedder(self) -> Encoder | None:
        retriever = self.current.retriever
        return retriever.embedder if retriever is not None else None

    def _refuse(self, target: Path | None, error: Exception) -> None:
        serving = self.current.retriever
        reason = str(error) if isinstance(error, IndexUnusable) else f"{type(error).__name__}: {error}"
        if serving is None:
            self._unavailable(reason)
        else:
            log.error("refusing the new index %s, still serving %s: %s", target, serving.build_id, reason)

    def _unavailable(self, reason: str) -> None:
        log.error("no usable index, answering 503: %s", reason)
        self.current = Snapshot(None, reason)

