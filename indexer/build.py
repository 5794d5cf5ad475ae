"""Build an index from a corpus folder: documents → passages → store + BM25 → embeddings → FAISS → switch.

Two passes keep memory flat for large corpora: the first streams documents into the passage store and
the BM25 token ids; the second reads passage texts back in batches, embeds them and appends the vectors
to a file that FAISS then reads through a memory map.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from indexer import index_dir
from indexer.documents import DEFAULT_MAX_BYTES, CorpusReport, iter_documents
from indexer.embedding import Embedder
from indexer.keyword import VocabularyBuilder, save_keyword_index
from indexer.passages import Chunking, split_passages
from indexer.store import StoreWriter
from indexer.vectors import build_vector_index, index_spec, save_vector_index
from text.normalize import fold_script

EMBED_READ_BATCH = 256


@dataclass(frozen=True)
class BuildResult:
    build: Path
    manifest: dict

    def summary(self) -> str:
        m = self.manifest
        lines = [
            f"index {m['build_id']}: {m['counts']['documents']} documents, {m['counts']['passages']} passages, "
            f"{m['counts']['skipped']} skipped, {m['build_seconds']:.1f} s "
            f"({m['passages_per_second']:.1f} passages/s), vectors: {m['vector_index']}, "
            f"files over {m['max_file_bytes'] / 2**20:.3g} MB skipped",
        ]
        lines += [f"  skipped {s['path']}: {s['reason']}" for s in m["skipped"]]
        return "\n".join(lines)


def build_index(corpus: Path, root: Path, embedder: Embedder, progress: bool = True,
                chunking: Chunking = Chunking(), max_file_bytes: int = DEFAULT_MAX_BYTES) -> BuildResult:
    started = time.perf_counter()
    build_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    fingerprint = corpus_fingerprint(corpus)
    tmp = index_dir.new_build_dir(root, build_id)
    report = CorpusReport()
    store = StoreWriter(tmp / index_dir.STORE)
    vocabulary = VocabularyBuilder()
    files: dict[str, str] = {}
    for document in iter_documents(corpus, report, max_file_bytes):
        passages = split_passages(document.doc_id, document.clean, chunking.target_units, chunking.overlap_units)
        folded = [fold_script(p.text) for p in passages]
        store.add(document, passages, folded)
        for text in folded:
            vocabulary.add(text)
        files[document.doc_id] = document.sha256
    if store.passage_count == 0:
        store.close()
        raise ValueError(f"no indexable text in {corpus} ({len(report.skipped)} files skipped)")
    save_keyword_index(vocabulary.build(), tmp / index_dir.KEYWORDS)
    del vocabulary
    encode_seconds, spec = _embed_passages(store, embedder, tmp, progress)
    store.close()
    seconds = time.perf_counter() - started
    manifest = {
        "format_version": index_dir.FORMAT_VERSION,
        "build_id": build_id,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"id": embedder.model_id, "dim": embedder.dim},
        "vector_index": spec,
        "chunking": asdict(chunking),
        "max_file_bytes": max_file_bytes,
        "counts": {"documents": len(files), "passages": store.passage_count, "skipped": len(report.skipped)},
        "build_seconds": round(seconds, 2),
        "encode_seconds": round(encode_seconds, 2),
        "passages_per_second": round(store.passage_count / seconds, 2),
        "corpus": {"root": str(corpus), "fingerprint": fingerprint, "files": files},
        "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
    }
    index_dir.write_manifest(tmp, manifest)
    return BuildResult(index_dir.publish(root, tmp, build_id), manifest)


def _embed_passages(store: StoreWriter, embedder: Embedder, tmp: Path, progress: bool) -> tuple[float, str]:
    """Embed every passage (script-folded text, `passage: ` prompt) and build the FAISS index from them.
    Returns the seconds spent in the model's encode (`make bench` compares the build with it) and the spec."""
    raw = tmp / "vectors.f32"
    encode_seconds = 0.0
    with raw.open("wb") as out, tqdm(total=store.passage_count, unit="passage", desc="embedding",
                                      disable=not progress) as bar:
        for texts in store.iter_folded(EMBED_READ_BATCH):
            started = time.perf_counter()
            vectors = embedder.passages(texts)
            encode_seconds += time.perf_counter() - started
            out.write(vectors.tobytes())
            bar.update(len(texts))
    vectors = np.memmap(raw, dtype=np.float32, mode="r").reshape(-1, embedder.dim)
    spec = index_spec(len(vectors))
    save_vector_index(build_vector_index(vectors, spec), tmp / index_dir.VECTORS)
    del vectors
    raw.unlink()
    return encode_seconds, spec


def corpus_fingerprint(corpus: Path) -> str:
    """One hash over every file's path and bytes (skipped files too: fixing one must trigger a rebuild)."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder, name) for folder, _, names in os.walk(corpus) for name in names):
        digest.update(path.relative_to(corpus).as_posix().encode())
        if not path.is_file():  # a FIFO would block, a broken link has no bytes: the name is enough
            continue
        try:
            with path.open("rb") as file:
                digest.update(hashlib.file_digest(file, "sha256").digest())
        except OSError as error:
            digest.update(str(error.errno).encode())
    return digest.hexdigest()


def is_up_to_date(corpus: Path, root: Path, model_id: str, chunking: Chunking = Chunking(),
                  max_file_bytes: int = DEFAULT_MAX_BYTES) -> bool:
    build = index_dir.current_build(root)
    try:
        manifest = index_dir.read_manifest(build) if build else None
    except index_dir.IndexUnusable:
        return False
    return manifest is not None and (
        manifest["model"]["id"] == model_id
        and manifest["chunking"] == asdict(chunking)
        and manifest.get("max_file_bytes") == max_file_bytes
        and manifest["corpus"]["fingerprint"] == corpus_fingerprint(corpus)
    )
