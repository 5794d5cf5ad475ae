"""Passage stores behind one contract (stores/contract.py): where builds are written and questions are answered.

    embedded  an index folder: SQLite + BM25 (bm25s) + FAISS, one snapshot per build (the default)
    milvus    a Milvus collection, updated in place by document (--milvus-uri / QA_MILVUS_URI)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stores.contract import StoreLocation

DEFAULT_COLLECTION = "passages"


@dataclass(frozen=True)
class StoreConfig:
    index: Path  # the embedded store's folder; with Milvus it holds only the build's caches, lock and jobs
    milvus_uri: str | None = None
    collection: str | None = None
    milvus_token: str | None = None

    @classmethod
    def from_env(cls, index: Path, milvus_uri: str | None = None, collection: str | None = None) -> StoreConfig:
        """Flags first, then QA_MILVUS_URI, QA_COLLECTION and QA_MILVUS_TOKEN."""
        return cls(index, milvus_uri or os.environ.get("QA_MILVUS_URI") or None,
                   collection or os.environ.get("QA_COLLECTION") or None, os.environ.get("QA_MILVUS_TOKEN") or None)


def locate(config: StoreConfig) -> StoreLocation:
    if config.milvus_uri:
        from stores.milvus import MilvusLocation  # pymilvus only when asked for

        return MilvusLocation(config.milvus_uri, config.collection or DEFAULT_COLLECTION, config.milvus_token or "")
    from stores.embedded import EmbeddedLocation

    return EmbeddedLocation(config.index)
