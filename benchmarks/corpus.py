"""The benchmarks' larger corpus: about 20k passages made from the shared eval datasets.

The three sets hold 1,736 paragraphs (XQuAD zh + en, DRCD, CMRC 2018), about 5.2k passages. Four
renditions of them make ~20k distinct passages with the datasets' real mix of length and script:
  - one file per paragraph and one per article (paragraphs joined), so passage boundaries differ;
  - each in the paragraph's own script and, for Chinese, converted to the other one (OpenCC s2t / t2s).
English paragraphs have no second script, so they come in the two granularities only.
Written once under benchmarks/.cache/ (git-ignored) and reused while the datasets do not change.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

from evals.datasets import DEFAULT_DATASETS, converter

CACHE = Path(__file__).resolve().parent / ".cache"
# (folder in the corpus, file under the datasets folder, the OpenCC conversion to the other script or None)
SOURCES = (
    ("xquad-zh", "xquad/xquad.zh.json", "s2t"),
    ("xquad-en", "xquad/xquad.en.json", None),
    ("drcd", "drcd/DRCD_dev.json", "t2s"),
    ("cmrc", "cmrc2018/cmrc2018_trial.json", "s2t"),
)
FORMAT = "1"  # bump when the renditions change, so that an old cached corpus is rewritten


def articles(path: Path) -> Iterator[tuple[str, list[str]]]:
    for number, article in enumerate(json.loads(path.read_text(encoding="utf-8"))["data"]):
        yield f"a{number:04d}", [p["context"] for p in article["paragraphs"]]


def renditions(convert: str | None) -> Iterator[tuple[str, Callable[[str], str]]]:
    yield "original", str
    if convert is not None:
        yield convert, converter(convert)


def write_corpus(datasets: Path = DEFAULT_DATASETS, root: Path = CACHE / "datasets-corpus") -> Path:
    """The corpus folder, written unless a complete one for the same datasets is already there."""
    stamp = root.with_name(root.name + ".complete")  # beside the corpus: the indexer would list it as skipped
    sources = {name: (datasets / name).stat().st_size for _, name, _ in SOURCES}
    expected = json.dumps({"format": FORMAT, "sources": sources}, sort_keys=True)
    if stamp.exists() and stamp.read_text() == expected:
        return root
    for set_name, name, convert in SOURCES:
        for rendition, apply in renditions(convert):
            folder = root / set_name / rendition
            for article, paragraphs in articles(datasets / name):
                _write(folder / "article" / f"{article}.txt", apply("\n\n".join(paragraphs)))
                for number, paragraph in enumerate(paragraphs):
                    _write(folder / "paragraph" / f"{article}-p{number:02d}.txt", apply(paragraph))
    stamp.write_text(expected)
    return root


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def questions(datasets: Path = DEFAULT_DATASETS, per_set: int = 100) -> list[str]:
    """Real questions about the corpus: the first `per_set` of each source, interleaved."""
    per_source = []
    for _, name, _ in SOURCES:
        data = json.loads((datasets / name).read_text(encoding="utf-8"))["data"]
        asked = [qa["question"] for article in data for p in article["paragraphs"] for qa in p["qas"]]
        per_source.append(asked[:: max(1, len(asked) // per_set)][:per_set])
    return [q for group in zip(*per_source) for q in group]
