"""What a build reports: its progress while it runs (jobs show it over HTTP), its result and summary after."""
from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Progress:
    """What a build has done so far; `report` gets it at every step (jobs show it over HTTP)."""
    stage: str = "waiting"
    files_total: int = 0
    files_done: int = 0
    files_processed: int = 0  # extracted now (the rest came from the document cache)
    passages_total: int = 0
    passages_embedded: int = 0  # encoded now
    passages_cached: int = 0  # taken from the embedding cache
    documents_written: int = 0  # new or changed in the store (a snapshot store: all)
    documents_deleted: int = 0  # gone from the corpus, removed from an in-place store
    seconds: dict[str, float] = field(default_factory=dict)  # per stage


@dataclass(frozen=True)
class BuildResult:
    where: str  # the store's description of the published build: its folder, or the Milvus collection
    manifest: dict

    def summary(self) -> str:
        m = self.manifest
        work = m["work"]
        lines = [
            f"index {m['build_id']}: {m['counts']['documents']} documents, {m['counts']['passages']} passages, "
            f"{m['counts']['skipped']} skipped, {m['build_seconds']:.1f} s; processed {work['files_processed']} of "
            f"{work['files_total']} files, embedded {work['passages_embedded']} passages "
            f"({work['passages_cached']} from the cache); vectors: {m['vector_index']}",
        ]
        lines += [f"  skipped {s['path']}: {s['reason']}" for s in m["skipped"]]
        return "\n".join(lines)


class Timed:
    """Adds the seconds of a `with` block to `seconds[name]`."""

    def __init__(self, seconds: dict[str, float], name: str) -> None:
        self.seconds, self.name = seconds, name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.seconds[self.name] = self.seconds.get(self.name, 0.0) + time.perf_counter() - self.started
