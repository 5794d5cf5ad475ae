"""The retriever a worker process answers with, or the reason it has none.

Requests read `state.current` once and use that snapshot throughout: a plain attribute read, no lock.
Writers (the load at start-up, later an index rebuild calling `swap`) replace the snapshot in one
assignment, serialized by a lock so that a slow load cannot overwrite a newer swap's result.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from indexer.embedding import ModelMissingError
from indexer.index_dir import IndexUnusable
from service.retrieval import Retriever, load_retriever

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    retriever: Retriever | None
    reason: str  # why there is no retriever; "" when there is one


class RetrieverState:
    def __init__(self) -> None:
        self.current = Snapshot(None, "the index has not been loaded")
        self._write_lock = threading.RLock()

    def load(self, index_root: Path, model: str | None) -> None:
        """Load the index and its model; on failure keep serving 503 with the reason instead of crashing."""
        with self._write_lock:
            try:
                retriever = load_retriever(index_root, model)
            except (IndexUnusable, ModelMissingError) as error:
                self._unavailable(str(error))
            except Exception as error:  # a broken model folder, a damaged file: say so on /readyz, keep running
                log.exception("loading the index at %s failed", index_root)
                self._unavailable(f"loading the index at {index_root} failed: {type(error).__name__}: {error}")
            else:
                self.swap(retriever)

    def swap(self, retriever: Retriever) -> None:
        """Serve `retriever` from the next request on; requests in flight finish with the one they read."""
        with self._write_lock:
            self.current = Snapshot(retriever, "")
        log.info("serving index %s (%d passages)", retriever.build_id, retriever.passage_count)

    def _unavailable(self, reason: str) -> None:
        log.error("no usable index, answering 503: %s", reason)
        self.current = Snapshot(None, reason)
