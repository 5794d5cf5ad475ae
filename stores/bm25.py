"""The keyword side: BM25 (bm25s) over jieba tokens of the normalized passage text."""
from __future__ import annotations

import json
import math
from array import array
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np
import scipy.sparse
from bm25s.tokenization import Tokenized

from stores.layout import gather_spans

COMMON_SHARE = 0.5  # a word in more of the passages than this is left out of a search (KeywordIndex.searched_words)
UNUSED_SHARE = 0.1  # of a vocabulary, words no passage holds any more (_without_unused)
VOCABULARY = "vocab.index.json"  # bm25s's file of a saved index
TOKENS, LENGTHS = "tokens.npy", "lengths.npy"  # beside it: every passage's token ids, and how many, in id order


class _Vocabulary(dict):
    """token → id; a token not seen yet gets the next id when looked up."""

    def __missing__(self, token: str) -> int:
        self[token] = len(self)
        return len(self) - 1


class VocabularyBuilder:
    """Maps tokens to ids while passages stream by, so the corpus is held as one array of ints, not strings.

    Started from a saved index (`previous`), its passages come first, ids as saved, and its vocabulary goes on;
    `save` writes every passage's token ids beside the index for the next build to start from."""

    def __init__(self, previous: Path | None = None) -> None:
        saved = json.loads((previous / VOCABULARY).read_text("utf-8")) if previous is not None else {}
        self.vocab: dict[str, int] = _Vocabulary(saved)
        self._previous = ((np.load(previous / TOKENS, mmap_mode="r"), np.load(previous / LENGTHS))
                          if previous is not None else (np.empty(0, np.int32), np.empty(0, np.int64)))
        self.ids = array("i")  # every added passage's token ids, one after another
        self.lengths = array("q")  # tokens per added passage

    def add(self, tokens: list[str]) -> None:
        """Add a passage by its `keyword_tokens` of the case-folded, script-folded text (indexer/process.py)."""
        # map() over __getitem__ stays in C but for new tokens: 0.46 against 0.65-0.73 s for a comprehension of
        # setdefault(token, len(vocab)) over 3.9M tokens of the bench corpus
        self.ids.extend(map(self.vocab.__getitem__, tokens))
        self.lengths.append(len(tokens))

    def build(self, layout: np.ndarray | None = None) -> bm25s.BM25:
        return self._build(*self._arranged(layout))[0]

    def save(self, folder: Path, layout: np.ndarray | None = None) -> None:
        """The index (`layout`: each passage's pool id, stores/layout.py; None: as added) and its token ids."""
        retriever, tokens, lengths = self._build(*self._arranged(layout))
        save_keyword_index(retriever, folder)
        np.save(folder / TOKENS, tokens)
        np.save(folder / LENGTHS, lengths)

    def _arranged(self, layout: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Every passage's token ids and counts, the previous index's passages then the added ones, in `layout`."""
        tokens = np.concatenate([self._previous[0], np.frombuffer(self.ids, dtype=np.int32)])
        lengths = np.concatenate([self._previous[1], np.frombuffer(self.lengths, dtype=np.int64)])
        if layout is None or np.array_equal(layout, np.arange(len(lengths))):
            return tokens, lengths
        return gather_spans(tokens, lengths, layout)

    def _build(self, tokens: np.ndarray, lengths: np.ndarray) -> tuple[bm25s.BM25, np.ndarray, np.ndarray]:
        """bm25s refuses an empty vocabulary (passages without a word, e.g. of digits or emoji only): the empty
        token, which bm25s reserves and no question has, stands in for it."""
        vocab, tokens = _without_unused(dict(self.vocab), tokens)  # a plain dict: a lookup must not add a token
        retriever = _ArrayBM25()
        retriever.index(Tokenized(ids=_FlatIds(tokens, lengths), vocab=vocab or {"": 0}), show_progress=False)
        return retriever, tokens, lengths


def _without_unused(vocab: dict[str, int], tokens: np.ndarray) -> tuple[dict[str, int], np.ndarray]:
    """Words of deleted passages stay in the vocabulary of a build started from the last (scoring nothing: an
    empty column) until they are more than UNUSED_SHARE of it; then the ids are renumbered without them."""
    used = np.bincount(tokens, minlength=len(vocab)) > 0
    if len(vocab) - np.count_nonzero(used) <= UNUSED_SHARE * len(vocab):
        return vocab, tokens
    renumbered = np.cumsum(used) - 1
    return ({token: int(renumbered[i]) for token, i in vocab.items() if used[i]},
            renumbered[tokens].astype(np.int32))


@dataclass(frozen=True)
class _FlatIds:
    tokens: np.ndarray  # int32, every passage's token ids one after another
    lengths: np.ndarray  # int64, tokens per passage


class _ArrayBM25(bm25s.BM25):
    """bm25s's index built by array operations over all passages at once instead of a Python loop per passage
    (`build_index_from_ids` is bm25s's documented place for that): the same scores bit for bit, in the same
    layout (tests/test_bm25.py), and with 4 bytes a token instead of a Python list per passage. With an argsort in
    place of lucene_scores' sparse conversion it was already 3.5× faster (0.37 against 1.32 s for the 19,888
    passages of `make bench`'s corpus, both indexes)."""

    def build_index_from_ids(self, unique_token_ids: list[int], corpus_token_ids: _FlatIds,
                             show_progress: bool = True, leave_progress: bool = False) -> dict:
        if (self.method, self.idf_method) != ("lucene", "lucene"):
            raise ValueError(f"only bm25s's default scoring is built here, not {self.method}")
        self.nonoccurrence_array = None
        return lucene_scores(corpus_token_ids.tokens, corpus_token_ids.lengths, len(unique_token_ids), self.k1, self.b)


def lucene_scores(tokens: np.ndarray, lengths: np.ndarray, vocabulary: int, k1: float, b: float) -> dict:
    """bm25s's score matrix (CSC: a column per token, passages ascending) with the very operations, operand
    types and rounding of its per-passage loop: idf by math.log per document frequency, tf component in float64,
    their product rounded to float32. The (passage, token) counts come from scipy's COO to CSC conversion, a
    counting sort in C that sums repeats: 4.4 s against 19.6 s for an argsort of the 91M tokens of the bench's 1M
    passages (the same arrays bit for bit)."""
    passages = len(lengths)
    rows = np.repeat(np.arange(passages, dtype=np.int32), lengths)
    counts = scipy.sparse.csc_matrix((np.ones(len(tokens), dtype=np.float32), (rows, tokens)),
                                     shape=(passages, vocabulary))
    del rows
    counts.sum_duplicates()  # already summed and sorted by the conversion: a check, not a pass
    tf, rows = counts.data, counts.indices
    indptr = counts.indptr.astype(np.int64)
    frequencies = np.diff(indptr)
    distinct, which = np.unique(frequencies, return_inverse=True)
    idf = np.array([math.log(1 + (passages - df + 0.5) / (df + 0.5)) if df else 0.0 for df in distinct.tolist()],
                   dtype=np.float32)[which]
    component = tf / (k1 * ((1 - b) + b * lengths[rows] / lengths.mean()) + tf)
    return {"data": (np.repeat(idf, frequencies) * component).astype(np.float32), "indices": rows.astype(np.int32),
            "indptr": indptr, "num_docs": passages}


def save_keyword_index(retriever: bm25s.BM25, folder: Path) -> None:
    retriever.save(str(folder), show_progress=False)


def load_keyword_index(folder: Path) -> KeywordIndex:
    return KeywordIndex(bm25s.BM25.load(str(folder), mmap=True, show_progress=False))


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


class KeywordIndex:
    """A saved bm25s index: the top k passages for a question's words, and which words any passage holds."""

    def __init__(self, retriever: bm25s.BM25) -> None:
        for part in ("data", "indices", "indptr"):  # still memory-mapped, but indexed without np.memmap's Python
            if isinstance(retriever.scores.get(part), np.memmap):  # __getitem__: ~200 calls a question, 0.2 ms
                retriever.scores[part] = retriever.scores[part].view(np.ndarray)
        self.retriever = retriever
        self.passage_count: int = retriever.scores["num_docs"]

    def top(self, tokens: list[str], k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The (at most) k passages with the best positive BM25 for `tokens` and those scores, in no order;
        `allowed` (a boolean per passage) leaves the others out before the top k are taken."""
        words = self.searched_words(tokens)
        if not words:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        scores = self.retriever.get_scores(words)
        if allowed is not None:
            scores = np.where(allowed, scores, np.float32(0))
        top = top_positive(scores, k)
        return top, scores[top]

    def searched_words(self, tokens: list[str]) -> list[str]:
        """The tokens in the vocabulary, less those in more than COMMON_SHARE of the passages when others remain.

        Such a word costs a search most of its time and adds little: at 1M passages, 600 real searches reached
        1.65M postings each on average, 98 % of them of words in more than 2 % of the passages, like 的 (95 %), 在,
        是 and the pivot words they translate to ("right", "exist": 62–67 %). BM25's IDF, ln(1 + (N − df + ½) /
        (df + ½)), is ≤ ln 2 for a word in half the passages and ≈ 13 for a word in one of 1M. A question made
        only of such words keeps them."""
        counts = self._passages_holding(tokens)
        known = [t for t, n in zip(tokens, counts) if n > 0]
        rarer = [t for t, n in zip(tokens, counts) if 0 < n <= COMMON_SHARE * self.passage_count]
        return rarer or known

    def known(self, tokens: list[str]) -> np.ndarray:
        """Per token: does a passage contain it? Its column of the BM25 matrix (CSC) is not empty; no score is computed."""
        return np.array(self._passages_holding(tokens), dtype=np.int64) > 0

    def _passages_holding(self, tokens: list[str]) -> list[int]:
        """Per token, how many passages hold it: the length of its column (0 if not in the vocabulary)."""
        indptr, vocab = self.retriever.scores["indptr"], self.retriever.vocab_dict
        return [int(indptr[vocab[t] + 1] - indptr[vocab[t]]) if t in vocab else 0 for t in tokens]
