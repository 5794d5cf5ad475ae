"""Doc-level ranking metrics from the rank of the first relevant hit (binary relevance, one gold paragraph).

A query's rank is the 1-based position, in the retriever's list of hits, of the first hit whose document
is gold; 0 when no returned hit is. Every metric below is a function of these ranks only.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

CUTOFF = 10  # hits asked for; MRR and nDCG are @10
METRICS = ("R@1", "R@5", "R@10", "MRR@10", "nDCG@10")


def first_relevant_rank(doc_ids: Sequence[str], gold: Collection[str]) -> int:
    return next((rank for rank, doc in enumerate(doc_ids, 1) if doc in gold), 0)


NO_HIT = -1.0  # the relevance of a question with no hit to keep: below every threshold


def best_relevance(relevances: Sequence[float]) -> float:
    """The highest relevance among a question's hits: /api/ask answers nothing at any min_relevance above it."""
    return max(relevances, default=NO_HIT)


def gold_relevance(hits: Sequence, gold: Collection[str]) -> float:
    """The highest relevance among the gold hits (anything with doc_id and relevance): a gold hit is kept by every
    min_relevance up to it."""
    return best_relevance([h.relevance for h in hits if h.doc_id in gold])


def share_reaching(relevances: Sequence[float], threshold: float) -> float:
    """Share of questions whose relevance reaches `threshold`: R@5 kept (gold relevances), or 1 − abstained."""
    return share([r >= threshold for r in relevances])


def _found_within(ranks: np.ndarray, k: int) -> np.ndarray:
    ranks = np.asarray(ranks)
    return (ranks >= 1) & (ranks <= k)


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def recall_at(ranks: np.ndarray, k: int) -> float:
    """Share of queries whose gold document is among the first k hits."""
    return _mean(_found_within(ranks, k))


def mrr_at(ranks: np.ndarray, k: int) -> float:
    ranks = np.asarray(ranks, dtype=float)
    return _mean(np.where(_found_within(ranks, k), 1.0 / np.maximum(ranks, 1), 0.0))


def ndcg_at(ranks: np.ndarray, k: int) -> float:
    """One relevant document per query, so the ideal DCG is 1 and nDCG = 1 / log2(rank + 1)."""
    ranks = np.asarray(ranks, dtype=float)
    return _mean(np.where(_found_within(ranks, k), 1.0 / np.log2(np.maximum(ranks, 1) + 1), 0.0))


def share(flags: Sequence[bool]) -> float:
    return _mean(np.asarray(flags, dtype=bool))


def summarize(ranks: Sequence[int]) -> dict[str, float]:
    ranks = np.asarray(ranks, dtype=int)
    return {
        "R@1": recall_at(ranks, 1),
        "R@5": recall_at(ranks, 5),
        "R@10": recall_at(ranks, 10),
        "MRR@10": mrr_at(ranks, CUTOFF),
        "nDCG@10": ndcg_at(ranks, CUTOFF),
    }
