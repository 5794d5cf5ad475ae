"""The dense model on ONNX Runtime, fp32 or dynamic int8 weights: export once, encode like indexer.embedding.Embedder.

Export (`make model` runs it after the conversion; offline, skipped when up to date):
    python -m indexer.onnx_backend --model models/multilingual-e5-small
writes <model>/onnx/model_fp32.onnx: the BertModel traced with torch.onnx.export and fused by ONNX Runtime's
transformer optimizer (backend "onnx"), model_fp32_packing.onnx: the same with indexer/packing.py's two inputs, and
model_int8.onnx: the fused model through quantize_dynamic (int8 weights, per channel; backend "onnx-int8") but for
the products after GELU (`fp32_products`), and export.json: the recipe, so a changed recipe re-exports.
Encoding reproduces the sentence-transformers folder: its tokenizer.json, its prompts, mean pooling over the
attention mask, L2 norm. The service loads it `packed`: its sessions run the packing graph, so a short batch is
one row without padding, with the same vectors. Not through optimum: its only release for ONNX (optimum-onnx
0.1.0) needs transformers < 4.58, the project pins 5.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
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
RECIPE_FILE = "export.json"
RECIPE = {"version": 2, "int8": "dynamic, weights per channel; fp32: the products after GELU"}
GELU_OPS = ("Gelu", "BiasGelu", "FastGelu")


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


def is_exported(model_dir: Path) -> bool:
    """Every file exists, is newer than every file of the source model they were made from, and follows RECIPE."""
    sources = [model_dir / "model.safetensors", model_dir / "config.json"]
    targets = [onnx_path(model_dir, backend) for backend in FILES] + [packing_path(model_dir)]
    recipe = onnx_path(model_dir).with_name(RECIPE_FILE)
    current = all(t.is_file() and all(t.stat().st_mtime > s.stat().st_mtime for s in sources) for t in targets)
    return current and recipe.is_file() and json.loads(recipe.read_text()) == RECIPE


def export_fp32(model_dir: Path, out: Path) -> None:
    """BertModel (eager attention) -> ONNX, dynamic batch and sequence axes, output last_hidden_state."""
    import torch
    from transformers import AutoModel

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(model_dir), add_pooling_layer=False,
                                                  attn_implementation="eager").eval()

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    model = Wrapper().eval()
    sample = (torch.ones(2, 16, dtype=torch.int64), torch.ones(2, 16, dtype=torch.int64))
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "last_hidden_state": {0: "batch", 1: "tokens"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and the tracer's (shapes are dynamic)
        torch.onnx.export(model, sample, str(out), input_names=["input_ids", "attention_mask"],
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17,
                          dynamo=False, do_constant_folding=True)


def fuse(model_dir: Path, src: Path, out: Path) -> None:
    """ONNX Runtime's BERT fusions (attention, layer norm, gelu), so quantization sees the fused ops."""
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((model_dir / "config.json").read_text())
    optimized = optimize_model(str(src), model_type="bert", num_heads=config["num_attention_heads"],
                               hidden_size=config["hidden_size"], opt_level=1)
    optimized.save_model_to_file(str(out))


def write_packing_graph(src: Path, out: Path) -> None:
    """The fused graph with indexer/packing.py's inputs wired in; its weights are the same, under the same names."""
    import onnx

    graph = packing.packing_graph(onnx.load(str(src)))
    if graph is None:
        raise ValueError(f"{src}: ONNX Runtime's fusions left an attention unfused; the graph cannot pack")
    onnx.save(graph, str(out))


def quantize(src: Path, out: Path, per_channel: bool = True) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # shape inference knows no com.microsoft fused ops: their outputs are float
    quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=per_channel,
                     nodes_to_exclude=fp32_products(onnx.load(str(src))),
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def fp32_products(model: object) -> list[str]:
    """The matrix products int8 keeps in fp32: those fed by GELU (each layer's feed-forward output). Dynamic
    quantization gives each activation tensor one scale; a few GELU output channels peak far above the rest (5–63×
    the median channel's peak on the seed articles), so that scale leaves the others few levels. Cosine to fp32's
    passage vectors on 249 dataset paragraphs, mean / lowest: .9970 / .9945 with every product int8, .9993 / .9986
    with these fp32, at 1.79× raw fp32's passages/s against 2.1× all int8 (README, "The ONNX backends")."""
    gelu_outputs = {name for node in model.graph.node if node.op_type in GELU_OPS for name in node.output}
    return [node.name for node in model.graph.node if node.op_type == "MatMul" and gelu_outputs & set(node.input)]


def export(model_dir: Path, force: bool = False) -> float | None:
    """Write <model_dir>/onnx/model_fp32.onnx (fused), model_fp32_packing.onnx and model_int8.onnx; returns the
    seconds taken, or None if all are up to date."""
    if not force and is_exported(model_dir):
        return None
    start, folder = time.time(), onnx_path(model_dir).parent
    folder.mkdir(exist_ok=True)
    check_free_space(model_dir, folder)
    with tempfile.TemporaryDirectory(prefix=".onnx-export-", dir=folder) as tmp:
        raw, fused, int8 = Path(tmp) / "raw.onnx", Path(tmp) / "fused.onnx", Path(tmp) / "int8.onnx"
        export_fp32(model_dir, raw)
        fuse(model_dir, raw, fused)
        write_packing_graph(fused, Path(tmp) / "packing.onnx")
        quantize(fused, int8)
        os.replace(Path(tmp) / "packing.onnx", packing_path(model_dir))
        os.replace(fused, onnx_path(model_dir, "onnx"))
        os.replace(int8, onnx_path(model_dir, "onnx-int8"))
        onnx_path(model_dir).with_name(RECIPE_FILE).write_text(json.dumps(RECIPE))
    return round(time.time() - start, 1)


def check_free_space(model_dir: Path, folder: Path) -> None:
    """Raise OSError unless there is room for the export: four files of about the weights' size beside them, and
    one more that ONNX Runtime's quantizer writes to the temp folder. A full disk fails late and obscurely (a
    truncated model reads back as "Wire format was corrupt")."""
    weights = sum(path.stat().st_size for path in Path(model_dir).glob("*.safetensors"))
    for place, copies in ((folder, 5), (Path(tempfile.gettempdir()), 1)):
        if (free := shutil.disk_usage(place).free) < copies * weights:
            raise OSError(f"the ONNX export needs {copies * weights / 2**30:.1f} GiB free in {place}, "
                          f"it has {free / 2**30:.1f} GiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/multilingual-e5-small"))
    parser.add_argument("--force", action="store_true", help="export even if the files are up to date")
    args = parser.parse_args(argv)
    seconds = export(args.model, args.force)
    files = [onnx_path(args.model, backend) for backend in FILES] + [packing_path(args.model)]
    targets = ", ".join(f"{path} ({path.stat().st_size / 2**20:.0f} MiB)" for path in files)
    print(f"{targets} are newer than {args.model}'s weights; nothing to do" if seconds is None
          else f"exported {targets} in {seconds}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
