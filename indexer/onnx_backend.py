"""The dense model on ONNX Runtime, fp32 or dynamic int8 weights, encoding like indexer.embedding.Embedder from
the files indexer/onnx_export.py writes under <model>/onnx (`make model`).
Encoding reproduces the sentence-transformers folder: its tokenizer.json, its prompts, mean pooling over the
attention mask, L2 norm. The service loads it `packed`: its sessions run the packing graph, so a short batch is
one row without padding, with the same vectors. Not through optimum: its only release for ONNX (optimum-onnx
0.1.0) needs transformers < 4.58, the project pins 5.
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from indexer import packing
from indexer.embedding import Encoder

ONNX_SUBDIR = "onnx"
FILES = {"onnx": "model_fp32.onnx", "onnx-int8": "model_int8.onnx"}  # backend → file under ONNX_SUBDIR
PACKING_SUFFIX = "_packing"  # model_fp32_packing.onnx: indexer/packing.py's graph (int8's graph cannot pack)
MAX_TOKENS = 512


def onnx_path(model_dir: Path, backend: str = "onnx-int8") -> Path:
    return Path(model_dir) / ONNX_SUBDIR / FILES[backend]


def packing_path(model_dir: Path, backend: str = "onnx") -> Path:
    path = onnx_path(model_dir, backend)
    return path.with_name(path.stem + PACKING_SUFFIX + path.suffix)


def _st_config(model_dir: Path) -> tuple[dict[str, str], int]:
    """Prompts and max sequence length of the sentence-transformers folder; checks its pooling is mean."""
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    if pooling.get("pooling_mode") != "mean" and not pooling.get("pooling_mode_mean_tokens"):
        raise ValueError(f"{model_dir}: the ONNX backend implements mean pooling only, not {pooling}")
    prompts = json.loads((model_dir / "config_sentence_transformers.json").read_text()).get("prompts", {})
    max_len = json.loads((model_dir / "tokenizer_config.json").read_text()).get("model_max_length", MAX_TOKENS)
    return prompts, min(int(max_len), MAX_TOKENS)


@dataclass
class OnnxEmbedder(Encoder):
    session: object     # onnxruntime.InferenceSession on every core
    tokenizer: object   # tokenizers.Tokenizer
    prompts: dict[str, str]
    model_id: str
    dim: int
    # The same model on one thread, sharing the session's weights, for a call made while another runs: two calls
    # that each split their work over both cores pay for the split twice. None: not asked for (side_by_side), or
    # a single core.
    side_session: object | None = None
    weights: dict[str, object] = field(default_factory=dict, repr=False)  # both sessions read these in place
    # The sessions run indexer/packing.py's graph: a batch of at most PACKED_TOKENS tokens is one row, unpadded.
    packed: bool = False
    # Calls run side by side: the sessions are thread-safe and the tokenizer is never reconfigured after loading.
    # Two calls at once encode 2 cores' worth of questions without waiting for each other's batch
    # (service/batching.py); more add nothing on 2 cores.
    parallel_calls: ClassVar[int] = 2
    # int8's questions go to fp32 ONNX, loaded on the first one (a build asks none), so they serve any backend's index
    fp32_questions: Callable[[], OnnxEmbedder] | None = None
    _running: int = field(default=0, init=False, repr=False)
    _counting: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _fp32: OnnxEmbedder | None = field(default=None, init=False, repr=False)
    _loading: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _encode(self, texts: list[str], prompt_name: str, batch_size: int) -> np.ndarray:
        if prompt_name != "passage" and self.fp32_questions is not None:
            return self._fp32_model()._encode(texts, prompt_name, batch_size)
        prompt = self.prompts.get(prompt_name, "")
        out = np.zeros((len(texts), self.dim), np.float32)
        # like sentence-transformers: longest first, so each batch pads to similar lengths
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            out[chunk] = self._batch([prompt + texts[i] for i in chunk])
        return out

    def _fp32_model(self) -> OnnxEmbedder:
        with self._loading:
            if self._fp32 is None:
                self._fp32 = self.fp32_questions()
        return self._fp32

    def token_counts(self, texts: list[str]) -> list[int]:
        return [len(encoding.ids) - encoding.ids.count(self._pad_id) for encoding in self.tokenizer.encode_batch(texts)]

    @property
    def _pad_id(self) -> int:
        return self.tokenizer.token_to_id("<pad>")

    def _batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], np.int64)
        mask = np.array([e.attention_mask for e in encodings], np.int64)
        if self.packed and len(texts) > 1 and mask.sum() <= packing.PACKED_TOKENS:
            feeds, lengths = packing.packed_feeds(ids, mask)
            (hidden,) = self._run(feeds)
            pooled = packing.mean_of_each(hidden[0], lengths)
        else:
            (hidden,) = self._run(packing.padded_feeds(ids, mask) if self.packed
                                  else {"input_ids": ids, "attention_mask": mask})
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self._counting:
            session = self.session if self._running == 0 or self.side_session is None else self.side_session
            self._running += 1
        try:
            return session.run(None, feeds)
        finally:
            with self._counting:
                self._running -= 1


def load_onnx_embedder(model_dir: Path, model_id: str, backend: str = "onnx-int8", threads: int | None = None,
                       side_by_side: bool = False, packed: bool = False) -> OnnxEmbedder:
    """`side_by_side` (calls will run at once) adds the one-thread `side_session`: 2.9 s more to load (fp32), +154 MB.
    `packed`: short batches are packed into one row (indexer/packing.py) where the export wrote the backend's
    packing graph (fp32)."""
    from tokenizers import Tokenizer

    path = onnx_path(model_dir, backend)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run `make model` to export it")
    prompts, max_len = _st_config(model_dir)
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.encode_special_tokens = True   # split_special_tokens: a literal "<s>" in a text is text
    tokenizer.enable_truncation(max_len)
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id("<pad>"), pad_token="<pad>")
    threads = threads or int(os.environ.get("QA_ONNX_THREADS", 0)) or (os.cpu_count() or 1)
    side_by_side = side_by_side and threads > 1
    packed = packed and packing_path(model_dir, backend).is_file()
    graph = packing_path(model_dir, backend) if packed else path  # the same weights under the same names
    weights = _weights(path) if side_by_side else {}
    session = _session(graph, threads, weights)
    dim = int(json.loads((model_dir / "config.json").read_text())["hidden_size"])
    side_session = _session(graph, 1, weights) if side_by_side else None
    fp32_questions = None if backend != "onnx-int8" else (  # the caller's options, for the questions' model
        lambda: load_onnx_embedder(model_dir, model_id, "onnx", threads, side_by_side, packed))
    return OnnxEmbedder(session, tokenizer, prompts, model_id, dim, side_session, weights, packed, fp32_questions)


def _weights(path: Path) -> dict[str, object]:
    """The model's initializers as OrtValues, for sessions to share instead of each loading a copy (fp32: two
    sessions take +154 MB over one, not a second model's ~800)."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    return {tensor.name: ort.OrtValue.ortvalue_from_numpy(numpy_helper.to_array(tensor))
            for tensor in onnx.load(str(path)).graph.initializer}


def _session(path: Path, threads: int, weights: dict[str, object]) -> object:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # no busy-waiting between runs: on a shared 2-core machine spinning threads starve the other workers
    # (measured: single-question p50 10 ms spinning vs 5 ms not, with another process busy)
    options.add_session_config_entry("session.intra_op.allow_spinning", os.environ.get("QA_ONNX_SPIN", "0"))
    for name, value in weights.items():
        options.add_initializer(name, value)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
