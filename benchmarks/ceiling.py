"""The hardware's ceiling for the encoder, measured in the same run: how close passage encoding comes to it.

- The CPU's features that lower precision needs (/proc/cpuinfo flags): AVX-512 bf16, AVX-512 / AVX VNNI (int8 dot
  products), AMX. Without them bf16 and int8 matrix products have no faster hardware path than fp32.
- GEMM throughput of torch on these cores for the shapes one encoder layer multiplies (a batch of passages'
  tokens × the hidden size 384 × the intermediate size 1536), in fp32 and, where the flags allow, bf16: the peak.
- The model's FLOPs per passage from its token counts (every layer: the four attention projections, the two
  feed-forward products, and the attention scores and weighted sums over the sequence), with and without the
  padding a batch adds; so the share of the peak an encoder's passages/s reaches.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from indexer.cpu_features import cpu_flags, has_bf16

GEMM_SECONDS = 1.5  # per shape and precision: long enough for a steady rate


def gemm_gflops(tokens: int, inner: int, outer: int, dtype: torch.dtype) -> float:
    """Steady GFLOP/s of (tokens × inner) @ (inner × outer) on torch's CPU threads."""
    a, b = torch.randn(tokens, inner, dtype=dtype), torch.randn(inner, outer, dtype=dtype)
    torch.matmul(a, b)  # warm: first calls pick kernels
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < GEMM_SECONDS:
        torch.matmul(a, b)
        runs += 1
    return 2 * tokens * inner * outer * runs / (time.perf_counter() - started) / 1e9


def layer_shapes(config: dict, tokens: int) -> list[tuple[int, int, int]]:
    hidden, intermediate = config["hidden_size"], config["intermediate_size"]
    return [(tokens, hidden, hidden), (tokens, hidden, intermediate), (tokens, intermediate, hidden)]


def flops_per_passage(config: dict, length: int) -> float:
    """Multiply-adds × 2 of one passage of `length` tokens through every layer (embeddings and norms left out)."""
    hidden, intermediate = config["hidden_size"], config["intermediate_size"]
    per_layer = 2 * length * (4 * hidden * hidden + 2 * hidden * intermediate) + 4 * length * length * hidden
    return config["num_hidden_layers"] * per_layer


def padded_lengths(lengths: list[int], batch: int) -> list[int]:
    """Each passage's length once padded to the longest of its batch, batches taken in the order given."""
    padded = []
    for start in range(0, len(lengths), batch):
        chunk = lengths[start : start + batch]
        padded += [max(chunk)] * len(chunk)
    return padded


def measure(model_dir: Path, lengths: list[int], batch: int = 32) -> dict:
    """`lengths`: the tokens the model reads of each sampled passage, its prompt included."""
    config = json.loads((model_dir / "config.json").read_text())
    flags = cpu_flags()
    tokens = batch * round(sum(lengths) / len(lengths))  # one batch of average passages
    precisions = {"fp32": torch.float32, **({"bf16": torch.bfloat16} if has_bf16(flags) else {})}
    gemm = {name: {f"{m}x{k}x{n}": gemm_gflops(m, k, n, dtype) for m, k, n in layer_shapes(config, tokens)}
            for name, dtype in precisions.items()}
    return {
        "flags": flags, "threads": torch.get_num_threads(), "batch": batch, "gemm_gflops": gemm,
        "peak_gflops": {name: max(rates.values()) for name, rates in gemm.items()},
        "mean_tokens": sum(lengths) / len(lengths),
        "flops_per_passage": sum(flops_per_passage(config, n) for n in lengths) / len(lengths),
        "flops_per_passage_padded": sum(flops_per_passage(config, n) for n in padded_lengths(lengths, batch))
        / len(lengths),
    }


def share_of_peak(ceiling: dict, passages_per_second: float, precision: str = "fp32") -> float:
    """Useful FLOP/s (unpadded tokens) of an encoder as a share of this machine's measured GEMM peak."""
    return passages_per_second * ceiling["flops_per_passage"] / (ceiling["peak_gflops"][precision] * 1e9)


def run(index_root: Path, sample: int = 512) -> dict:
    """The ceiling, then each passage encoder on the same sample of the corpus's passages: the raw
    sentence-transformers call (one encode of the whole sample, batches of 32: the issue's reference), the
    build's engine with the backend a build here picks (sorted by tokens; and int8, see _build_backends), torch's
    bf16 autocast where the CPU has bf16 instructions (with its vectors' cosine to the fp32 ones), and ONNX Runtime
    fp32 and int8 where `make model` exported them."""
    from benchmarks import indexing
    from indexer.embedding import FP32_BACKEND, InProcessEngine, configured_model, load_embedder
    from indexer.onnx_backend import onnx_path

    passages = indexing.sample_passages(index_root, sample)
    torch_encoder = load_embedder(None, "torch")
    prompt = (torch_encoder.model.prompts or {}).get("passage", "")
    model_dir = Path(configured_model(None))
    result = measure(model_dir, torch_encoder.token_counts([prompt + p for p in passages]))
    raw_rate, raw_vectors = _timed(lambda: torch_encoder.passages(passages), passages, torch_encoder)
    rates = {"sentence-transformers fp32 (raw)": raw_rate}
    encoders = {FP32_BACKEND: torch_encoder}
    if "bf16" in result["peak_gflops"]:
        encoders["torch-bf16"] = bf16_encoder = load_embedder(None, "torch-bf16")
        bf16_rate, bf16_vectors = _timed(lambda: bf16_encoder.passages(passages), passages, bf16_encoder)
        rates["sentence-transformers, torch bf16 autocast"] = bf16_rate
        cosines = np.sum(raw_vectors * bf16_vectors, axis=1)  # both L2-normalized
        result["bf16_cosine_to_fp32"] = {"mean": float(cosines.mean()), "lowest": float(cosines.min())}
    for backend in _build_backends(model_dir):
        build_encoder = encoders.get(backend) or load_embedder(None, backend)
        engine = InProcessEngine(build_encoder)
        rates[f"build engine, {backend}, sorted by tokens"] = _rate(
            lambda: list(engine.embed((str(i).encode(), p) for i, p in enumerate(passages))), passages, build_encoder)
    for backend in ("onnx", "onnx-int8"):
        if onnx_path(model_dir, backend).is_file():
            encoder = load_embedder(None, backend)
            rates[f"ONNX Runtime {backend.removeprefix('onnx').strip('-') or 'fp32'}"] = _rate(
                lambda: encoder.passages(passages), passages, encoder)
    result["passages_per_second"] = rates
    result["share_of_peak"] = {precision: {name: share_of_peak(result, rate, precision) for name, rate in rates.items()}
                               for precision in result["peak_gflops"]}
    return result


def _build_backends(model_dir: Path) -> list[str]:
    """The backend a build here runs, then int8 too where the CPU has VNNI but a build picks bf16: so that a
    machine with both measures what a VNNI-only one would build with, against the same raw fp32 rate."""
    from indexer.cpu_features import has_int8_dot
    from indexer.embedding import configured_backend
    from indexer.onnx_backend import onnx_path

    chosen = configured_backend()
    extra = chosen != "onnx-int8" and has_int8_dot() and onnx_path(model_dir, "onnx-int8").is_file()
    return [chosen, "onnx-int8"] if extra else [chosen]


def _rate(encode, passages: list[str], encoder) -> float:
    return _timed(encode, passages, encoder)[0]


def _timed(encode, passages: list[str], encoder) -> tuple[float, object]:
    """Passages/s of `encode` over `passages`, after a warm call (first calls pick kernels), and what it returned."""
    encoder.passages(passages[:32])
    started = time.perf_counter()
    encoded = encode()
    return len(passages) / (time.perf_counter() - started), encoded
