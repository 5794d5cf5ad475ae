"""Whether an index is up to date with its corpus, model and settings, without reading any file twice:
`python -m indexer build` exits at once when it is (the caches make the other cases cheap, not free)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from extract import Limits
from indexer.documents import DEFAULT_MAX_BYTES
from indexer.passages import Chunking
from indexer.process import Settings, pipeline_version
from stores.contract import FORMAT_VERSION, IndexUnusable, StoreLocation, StoreUnavailable


def corpus_fingerprint(corpus: Path) -> str:
    """One hash over every file's path and bytes (skipped files too: fixing one must trigger a rebuild)."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder, name) for folder, _, names in os.walk(corpus) for name in names
                       if not name.startswith(".")):
        digest.update(path.relative_to(corpus).as_posix().encode())
        if not path.is_file():  # a FIFO would block, a broken link has no bytes: the name is enough
            continue
        try:
            with path.open("rb") as file:
                digest.update(hashlib.file_digest(file, "sha256").digest())
        except OSError as error:
            digest.update(str(error.errno).encode())
    return digest.hexdigest()


def is_up_to_date(corpus: Path, location: StoreLocation, model_id: str, chunking: Chunking = Chunking(),
                  max_file_bytes: int = DEFAULT_MAX_BYTES, limits: Limits = Limits()) -> bool:
    try:
        manifest = location.manifest()
    except (IndexUnusable, StoreUnavailable):
        return False
    return manifest is not None and (
        manifest.get("format_version") == FORMAT_VERSION  # a Milvus manifest of an older format reads fine
        and manifest["model"]["id"] == model_id
        and manifest.get("pipeline") == pipeline_version(Settings(chunking, limits))
        and manifest.get("max_file_bytes") == max_file_bytes
        and manifest["corpus"]["fingerprint"] == corpus_fingerprint(corpus)
    )
