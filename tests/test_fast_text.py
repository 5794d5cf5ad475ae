"""The fast paths of text/ give exactly what the libraries they stand in for give: text/convert.py against
opencc-python-reimplemented, text/segment.py's keyword tokens against jieba's own search-mode cut.

Checked on the seed corpus, the datasets' paragraphs and questions (when ../shared/datasets is there) and random
strings drawn from their characters, so runs of separators, digits in Han, mixed scripts and the empty string
all occur."""
from __future__ import annotations

import json
import random
import re

import jieba
import pytest
from opencc import OpenCC

from evals.datasets import DEFAULT_DATASETS, SEED_CORPUS
from text.convert import converter
from text.normalize import normalize
from text.segment import keyword_tokens

DATASET_FILES = ("xquad/xquad.zh.json", "xquad/xquad.en.json", "drcd/DRCD_dev.json", "cmrc2018/cmrc2018_trial.json")
_WORD = re.compile(r"\w")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    found = [path.read_text(encoding="utf-8") for path in sorted(SEED_CORPUS.rglob("*")) if path.suffix in (".txt", ".md", ".html")]
    for name in DATASET_FILES:
        path = DEFAULT_DATASETS / name
        if path.is_file():
            for article in json.loads(path.read_text(encoding="utf-8"))["data"][::3]:
                for paragraph in article["paragraphs"]:
                    found += [paragraph["context"], *(qa["question"] for qa in paragraph["qas"])]
    pool = "".join(found) + " -,.?!，。、「」1-2 v1.2 3.5% c++ C# AT&T 4s店 江南style 臺灣 乾隆 干 𠀾"
    rng = random.Random(0)
    found += ["".join(rng.choice(pool) for _ in range(rng.randint(0, 40))) for _ in range(5000)]
    return found


@pytest.mark.parametrize("config", ["t2s", "s2t"])
def test_conversion_equals_opencc(texts: list[str], config: str) -> None:
    reference, fast = OpenCC(config), converter(config)
    different = [text for text in texts if fast.convert(text) != reference.convert(text)]
    assert not different, f"{len(different)} texts convert differently, e.g. {different[0][:80]!r}"


def test_keyword_tokens_equal_jieba(texts: list[str]) -> None:
    keyword_tokens("")  # loads jieba
    different = []
    for text in texts:
        normalized = normalize(text)
        expected = [t for t in (w.strip() for w in jieba.cut_for_search(normalized)) if t and _WORD.search(t)]
        if keyword_tokens(normalized) != expected:
            different.append(normalized)
    assert not different, f"{len(different)} texts tokenize differently, e.g. {different[0][:80]!r}"
