"""The keyword side: BM25 (bm25s) over jieba tokens of the normalized passage text."""
from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np
from bm25s.tokenization import Tokenized


class VocabularyBuilder:
    """Maps tokens to ids while passages stream by, so the corpus is held as ints, not strings."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.ids: list[list[int]] = []

    def add(self, tokens: list[str]) -> None:
        """Add a passage by its `keyword_tokens` of the case-folded, script-folded text (indexer/process.py)."""
        vocab = self.vocab
        self.ids.append([vocab.setdefault(token, len(vocab)) for token in tokens])

    def build(self) -> bm25s.BM25:
        """bm25s refuses an empty vocabulary (passages without a word, e.g. of digits or emoji only): the empty
        token, which bm25s reserves and no question has, stands in for it."""
        retriever = bm25s.BM25()
        retriever.index(Tokenized(ids=self.ids, vocab=self.vocab or {"": 0}), show_progress=False)
        return retriever


def save_keyword_index(retriever: bm25s.BM25, folder: Path) -> None:
    retriever.save(str(folder), show_progress=False)


def load_keyword_index(folder: Path) -> bm25s.BM25:
    return bm25s.BM25.load(str(folder), mmap=True, show_progress=False)


def top_positive(scores: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    """Indices of the (at most) k largest positive scores, in no order; ties at the k-th as argpartition breaks them.

    np.argpartition over a million scores takes ~11 ms here. Instead: the maxima of blocks of `block` scores, and
    the k-th largest of those, θ. k blocks hold a score ≥ θ, so the k-th largest score is ≥ θ, and every score
    of the top k lies in a block whose maximum is ≥ θ: only those blocks are partitioned (0.6 ms at 1M)."""
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    whole = len(scores) - len(scores) % block
    maxima = scores[:whole].reshape(-1, block).max(axis=1)
    threshold = np.partition(maxima, len(maxima) - k)[len(maxima) - k] if k < len(maxima) else 0.0
    if threshold <= 0:
        candidates = np.flatnonzero(scores > 0)
    else:
        blocks = np.flatnonzero(maxima >= threshold)
        candidates = np.concatenate([(blocks[:, None] * block + np.arange(block)).ravel(), np.arange(whole, len(scores))])
        candidates = candidates[scores[candidates] >= threshold]
    if len(candidates) <= k:
        return candidates
    return candidates[np.argpartition(scores[candidates], len(candidates) - k)[len(candidates) - k :]]


def keyword_scores(retriever: bm25s.BM25, question_tokens: list[str]) -> np.ndarray:
    """BM25 score of every passage for the question's `keyword_tokens` (zeros when none is in the vocabulary)."""
    tokens = [t for t in question_tokens if t in retriever.vocab_dict]
    if not tokens:
        return np.zeros(retriever.scores["num_docs"], dtype=np.float32)
    return retriever.get_scores(tokens)


def known_tokens(retriever: bm25s.BM25, tokens: list[str]) -> np.ndarray:
    """Per token: does a passage contain it? Its column of the BM25 matrix (CSC) is not empty; no score is computed."""
    indptr, vocab = retriever.scores["indptr"], retriever.vocab_dict
    columns = [vocab.get(token) for token in tokens]
    return np.array([c is not None and indptr[c + 1] > indptr[c] for c in columns], dtype=bool)
