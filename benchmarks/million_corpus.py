"""A corpus of about a million passages made of the shared datasets' real sentences (benchmarks/million.py).

The datasets hold 1,736 paragraphs (~5.2k passages): too few to repeat 200 times without making duplicates,
which the embedding cache and BM25 would see through. So documents are recombined from their sentences:
  - a pool is one source in one script (XQuAD zh and its s2t conversion, XQuAD en, DRCD and its t2s
    conversion, CMRC and its s2t conversion), as benchmarks/corpus.py renders them;
  - a document takes 3–12 consecutive paragraphs of one article of a pool; each paragraph's sentences are
    rotated by a random offset and a third of them are swapped for random sentences of the same pool;
  - so passages keep the datasets' languages, scripts, lengths and vocabulary, and (nearly) none repeats.
Documents are written until their estimated passages (units of text ÷ the chunker's stride) reach the
target; the real count is what the build reports. Seeded, written once under benchmarks/.cache/ (git-ignored).
"""
from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.corpus import CACHE, SOURCES, articles, renditions
from evals.datasets import DEFAULT_DATASETS
from indexer.passages import OVERLAP_UNITS, TARGET_UNITS, units
from text.sentences import sentence_spans

FORMAT = "1"  # bump when the recipe changes, so that a cached corpus is rewritten
FILES_PER_FOLDER = 1000
SWAP_SHARE = 1 / 3


@dataclass
class Pool:
    name: str
    joiner: str  # between sentences: nothing in Chinese, a space in English
    articles: list[list[list[str]]]  # article → paragraph → sentences
    sentences: list[str]  # every sentence of the pool, for swaps


def pools(datasets: Path = DEFAULT_DATASETS) -> list[Pool]:
    found = []
    for set_name, file_name, convert in SOURCES:
        for rendition, apply in renditions(convert):
            texts = [[apply(p) for p in paragraphs] for _, paragraphs in articles(datasets / file_name)]
            split = [[_sentences(p) for p in paragraphs] for paragraphs in texts]
            every = [s for article in split for paragraph in article for s in paragraph]
            found.append(Pool(f"{set_name}-{rendition}", " " if set_name.endswith("-en") else "", split, every))
    return found


def _sentences(paragraph: str) -> list[str]:
    return [paragraph[a:b] for a, b in sentence_spans(paragraph)] or [paragraph]


def documents(pools: list[Pool], passages: int, seed: int = 0) -> Iterator[tuple[str, str]]:
    """(pool name, text) until the estimated passage count reaches `passages`."""
    rng = random.Random(seed)
    weights = [len(pool.sentences) for pool in pools]
    estimated = 0.0
    while estimated < passages:
        pool = rng.choices(pools, weights)[0]
        text = _document(pool, rng)
        estimated += max(1.0, (units(text) - OVERLAP_UNITS) / (TARGET_UNITS - OVERLAP_UNITS))
        yield pool.name, text


def _document(pool: Pool, rng: random.Random) -> str:
    article = rng.choice(pool.articles)
    first, count = rng.randrange(len(article)), rng.randint(3, 12)
    paragraphs = []
    for offset in range(count):
        sentences = article[(first + offset) % len(article)]
        turn = rng.randrange(len(sentences))
        rotated = sentences[turn:] + sentences[:turn]
        paragraphs.append(pool.joiner.join(rng.choice(pool.sentences) if rng.random() < SWAP_SHARE else s for s in rotated))
    return "\n\n".join(paragraphs)


def write_corpus(passages: int, datasets: Path = DEFAULT_DATASETS) -> Path:
    """The corpus folder for about `passages` passages, written unless a complete one is already there."""
    root = CACHE / f"million-corpus-{passages}"
    stamp = root.with_name(root.name + ".complete")
    sources = {name: (datasets / name).stat().st_size for _, name, _ in SOURCES}
    expected = json.dumps({"format": FORMAT, "passages": passages, "sources": sources}, sort_keys=True)
    if stamp.exists() and stamp.read_text() == expected:
        return root
    counts: dict[str, int] = {}
    for pool_name, text in documents(pools(datasets), passages):
        number = counts.get(pool_name, 0)
        counts[pool_name] = number + 1
        path = root / pool_name / f"{number // FILES_PER_FOLDER:04d}" / f"d{number:06d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    stamp.write_text(expected)
    return root
