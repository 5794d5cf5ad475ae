"""Embedding passages on Ray: the same model in a pool of Ray actors, for builds larger than one machine's cores.

Why: the in-process engine is bound to the cores of the machine it runs on; a Ray cluster spreads the same
encoder over many actors. Ray Data's map_batches with an actor pool loads the model once per actor (one
CPU each, torch held to it) and streams vectors back as they are done, in no particular order: each batch
carries its keys (an Arrow binary column keeps bytes exact, trailing NULs included). Ray is imported only
when an engine is made, so builds without it never pay its import. `from_items` needs a list, so the
passages go `window` at a time: the driver never holds more than one window, and each window costs one
start of the actor pool (a model load per actor, a few seconds), which is why windows are large.
Actors are not restarted (max_restarts=0): a dead actor fails the build with RayEmbeddingError at once,
and the build's embedding cache keeps what was done; a restartable pool also logs a Ray Core error per actor.
"""
from __future__ import annotations

import logging
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from indexer.embedding import (TORCH_BACKENDS, EmbeddingFailed, configured_backend, configured_model,
                               encoder_identity, model_id)

LOCAL_STARTS = 3  # tries at starting a local Ray (_start_local)


class RayEmbeddingError(EmbeddingFailed):
    """An actor could not load the model or embed a batch; the Ray error is its __cause__."""


class _PassageActor:
    """One model per actor, torch or ONNX Runtime held to the actor's CPUs; a pyarrow batch in, its keys and vectors
    out."""

    def __init__(self, location: str, backend: str, batch_size: int) -> None:
        import ray

        threads = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ["QA_ONNX_THREADS"] = str(threads)  # onnx-int8's sessions, held to the actor's CPUs as torch is
        if backend in TORCH_BACKENDS:
            import torch

            torch.set_num_threads(threads)
        from indexer.embedding import load_embedder

        self.encoder, self.batch_size = load_embedder(location, backend), batch_size

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        vectors = self.encoder.passages(batch.column("text").to_pylist(), self.batch_size)
        flat = pa.array(vectors.reshape(-1), type=pa.float32())
        return pa.table({"key": batch.column("key"), "vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])})


class RayEngine:
    """PassageEngine on Ray Data. address: "local" (a Ray started here and shut down by close()), "auto" or a
    cluster's address. workers: actors, one CPU each (default: the cluster's CPUs). The backend is chosen here, by
    this CPU's flags unless set (passage_backend): set QA_BACKEND where the cluster's nodes differ from this one."""

    def __init__(self, address: str, location: str | None = None, backend: str | None = None,
                 workers: int | None = None, batch_size: int = 32, window: int = 20_000) -> None:
        self.location, self.backend = _absolute(configured_model(location)), configured_backend(backend)
        self.model_id = model_id(self.location)
        self.identity = encoder_identity(self.location, self.backend)
        self.batch_size, self.window = batch_size, window
        self._owns_ray = _start_ray(address)
        import ray

        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))

    def embed(self, items: Iterable[tuple[bytes, str]]) -> Iterator[tuple[list[bytes], np.ndarray]]:
        """Vectors of the items' texts, yielded batch by batch as they are done (any order), with their keys."""
        iterator = iter(items)
        while (dataset := self._dataset(list(islice(iterator, self.window)))) is not None:
            yield from self._run(dataset)

    def close(self) -> None:
        import ray

        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
        self._owns_ray = False

    def _dataset(self, window: list[tuple[bytes, str]]) -> Any:
        """The window's passages embedded by the actor pool (lazy: nothing runs until iterated); None if empty."""
        import ray.data

        if not window:
            return None
        rows = [{"key": bytes(key), "text": text} for key, text in window]
        blocks = math.ceil(len(rows) / self.batch_size)  # a block a batch (≤ batch_size): each its own task
        dataset = ray.data.from_items(rows, override_num_blocks=blocks)
        with warnings.catch_warnings():  # max_restarts has no named parameter (yet) in map_batches
            warnings.simplefilter("ignore", DeprecationWarning)
            return dataset.map_batches(
                _PassageActor, fn_constructor_args=(self.location, self.backend, self.batch_size),
                batch_format="pyarrow", batch_size=None, num_cpus=1,
                compute=ray.data.ActorPoolStrategy(size=min(self.workers, blocks)), max_restarts=0)

    def _run(self, dataset: Any) -> Iterator[tuple[list[bytes], np.ndarray]]:
        import ray.data

        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                yield _unpack(batch)
        except (ray.exceptions.RayError, ray.data.exceptions.UserCodeException) as error:
            raise RayEmbeddingError(f"embedding with {self.model_id} ({self.backend}) on Ray failed "
                                    f"({type(error).__name__}): {_reason(error)}") from error


def _unpack(batch: Any) -> tuple[list[bytes], np.ndarray]:
    vectors = batch.column("vector").combine_chunks()
    flat = vectors.flatten().to_numpy(zero_copy_only=False)
    return batch.column("key").to_pylist(), np.ascontiguousarray(flat.reshape(-1, vectors.type.list_size), np.float32)


def _reason(error: BaseException) -> str:
    """The actor's own exception line out of Ray's report (its traceback text, not an exception chain)."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(error)).splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"[\w.]*(Error|Exception|Interrupt|Exit)\b", line)]
    own = [line for line in raised if not line.startswith("ray.")]
    return (own or raised or lines or [repr(error)])[-1]


def _absolute(location: str) -> str:
    """A local model folder as an absolute path: actors need not share the driver's working directory."""
    path = Path(location).expanduser()
    return str(path.resolve()) if path.exists() else location


def _start_local(ray: Any, options: dict[str, Any]) -> None:
    """A local Ray's start-up sometimes hangs on these machines: its GCS server or raylet never writes a log line
    and Ray gives up after 30 s (three times on 2026-11-23 in test runs, once while waiting 120 s; on 2026-11-24
    the first start failed in 4 of 14 runs, and the second in 1 of those 4). A start after ray.shutdown() has cleared
    the last one usually comes up in seconds; the hung processes end with this one (Ray's reaper)."""
    start = partial(ray.init, num_cpus=os.cpu_count(), include_dashboard=False, **options)
    for attempt in range(1, LOCAL_STARTS + 1):
        try:
            start()
            return
        except Exception as error:  # Ray's start-up timeouts are plain Exception and RuntimeError
            if attempt == LOCAL_STARTS:
                raise
            logging.getLogger(__name__).warning("Ray did not start (%s); starting it again", error)
            ray.shutdown()


def _start_ray(address: str) -> bool:
    """Connect to or start Ray, quietly (no progress bars, no worker logs); True when this call started it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray.data

    started = False
    if not ray.is_initialized():
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
        if address == "local":
            _start_local(ray, options)
        else:
            ray.init(address=address, **options)
        started = address == "local"
    with warnings.catch_warnings():  # Ray's default DataContext sets its own deprecated fields
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ray.data.DataContext.get_current()
    context.enable_progress_bars = context.enable_operator_progress_bars = False
    context.enable_auto_log_stats = context.verbose_stats_logs = False
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)  # its errors reach the build as RayEmbeddingError
    return started
