"""Fit the relevance model (service/relevance.py) and its default threshold; writes service/relevance.json.

    python -m evals.calibrate [--datasets DIR] [--dry-run]

Examples: the hits of the gold document among the top 5 of every question of the xquad, drcd, cmrc and seed
rows (relevant), and the top-5 hits of the abstain rows' questions, asked of a corpus without their answer
(not relevant). One logistic regression per language pair over service/relevance.py's FEATURES.
Tuning and reporting are kept apart: the model and the thresholds are fitted on the even-numbered questions
of every row; the table printed is measured on the odd-numbered ones. The default threshold is the highest that
keeps every in-corpus row's R@5 within MAX_R5_LOSS of no threshold on the tuning questions; each language pair's
own is then raised as far as the same rule allows, and its bias shifted so that the default applies it.
"""
from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from evals.datasets import DEFAULT_DATASETS, Row, load_rows
from evals.runner import CACHE_ROOT, QuestionEncoder, cached_retriever
from indexer.embedding import load_embedder
from service.relevance import FEATURES, MODEL_FILE, RelevanceModel

SETS = ("xquad", "drcd", "cmrc", "seed", "abstain")
TOP = 5
MAX_R5_LOSS = 0.01
THRESHOLDS = np.round(np.arange(0.0, 0.96, 0.005), 3)
L2 = 1e-2  # ridge on the weights: the cross-language pairs have few relevant hits


@dataclass
class Question:
    row: str
    in_corpus: bool
    hits: list[tuple[str, tuple[float, ...], bool]]  # (pair, features, relevant), best first


def collect(rows: list[Row]) -> list[Question]:
    embedder, encoder, questions = load_embedder(None), QuestionEncoder(), []
    for row in rows:
        retriever, _ = cached_retriever(row.corpus, embedder, CACHE_ROOT)
        vectors = encoder.encode(retriever, [q.text for q in row.queries], row.name)
        for query, vector in zip(row.queries, vectors):
            _, spans, evidence = retriever.cite(query.text, TOP, vector=vector)
            hits = [(pair, tuple(rest), passage.doc_id in query.gold)
                    for passage, _ in spans for pair, *rest in [evidence.features(passage)]]
            questions.append(Question(row.name, row.set_name != "abstain", hits))
    return questions


def fit_logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Newton's method on the L2-penalised log-loss; the last column of x is the bias (not penalised)."""
    w, penalty = np.zeros(x.shape[1]), np.diag([L2] * (x.shape[1] - 1) + [0.0])
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -60, 60)))
        step = np.linalg.solve((x * (p * (1 - p))[:, None]).T @ x + penalty + 1e-9 * np.eye(len(w)),
                               x.T @ (p - y) + penalty @ w)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def fit(questions: list[Question]) -> dict[str, tuple[float, ...]]:
    examples: dict[str, list] = defaultdict(list)
    for question in questions:
        for pair, features, relevant in question.hits:
            if question.in_corpus and not relevant:
                continue  # another passage of an answerable question: often on the topic, so neither label fits
            examples[pair].append((*features, 1.0, float(relevant)))
            examples["mixed"].append((*features, 1.0, float(relevant)))  # every pair pooled: the fallback
    weights = {}
    for pair, rows in examples.items():
        data = np.array(rows)
        weights[pair] = tuple(round(float(v), 4) for v in fit_logistic(data[:, :-1], data[:, -1]))
    return weights


Scores = list[list[tuple[str, float, bool]]]  # per question, its hits' (pair, relevance, relevant)


def score(questions: list[Question], model: RelevanceModel) -> Scores:
    return [[(pair, model.relevance(pair, *f), relevant) for pair, f, relevant in q.hits] for q in questions]


def per_row(questions: list[Question], scores: Scores, thresholds: dict[str, float]) -> dict[str, tuple[bool, float, float]]:
    """row → (in corpus, R@5 or abstained share without a threshold, the same with a hit kept when its relevance
    reaches its pair's threshold, "mixed"'s for a pair without one)."""
    grouped: dict[str, list[tuple[bool, list]]] = defaultdict(list)
    for question, hits in zip(questions, scores):
        grouped[question.row].append((question.in_corpus, hits))
    result = {}
    for name, group in grouped.items():
        kept = [[relevant for pair, relevance, relevant in hits if relevance >= thresholds.get(pair, thresholds["mixed"])]
                for _, hits in group]
        if group[0][0]:
            result[name] = (True, np.mean([any(r for *_, r in hits) for _, hits in group]), np.mean([any(k) for k in kept]))
        else:
            result[name] = (False, 0.0, np.mean([not k for k in kept]))
    return result


def choose_thresholds(questions: list[Question], scores: Scores, pairs: set[str]) -> dict[str, float]:
    """The highest threshold that keeps every in-corpus row's R@5 within MAX_R5_LOSS with every pair held to it
    (the default, "mixed"'s), then each language pair's own, raised from it one pair at a time, the others held:
    relevant hits of some pairs score far above the threshold that the weakest pair's rows allow."""
    def allowed(thresholds: dict[str, float]) -> bool:
        rows = per_row(questions, scores, thresholds).values()
        return all(before - after <= MAX_R5_LOSS for inside, before, after in rows if inside)

    default = max((float(t) for t in THRESHOLDS if allowed(dict.fromkeys(pairs, float(t)))), default=0.0)
    chosen = dict.fromkeys(pairs, default)
    for pair in sorted(pairs - {"mixed"}):  # "mixed" pools every pair: no row's hits are its own
        chosen[pair] = max((float(t) for t in THRESHOLDS if t >= default and allowed({**chosen, pair: float(t)})),
                           default=default)
    return chosen


def at_one_threshold(weights: dict[str, tuple[float, ...]], thresholds: dict[str, float]) -> RelevanceModel:
    """Shift each pair's bias so that the default threshold ("mixed"'s) keeps exactly the hits its own would:
    relevance ≥ default ⇔ z + logit(default) − logit(own) ≥ logit(default) ⇔ z ≥ logit(own)."""
    default = thresholds["mixed"]
    shifted = {pair: (*w[:-1], round(w[-1] + (_logit(default) - _logit(thresholds[pair]) if default > 0 else 0.0), 4))
               for pair, w in weights.items()}
    return RelevanceModel(shifted, default)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=DEFAULT_DATASETS)
    parser.add_argument("--dry-run", action="store_true", help=f"print the table, leave {MODEL_FILE.name} alone")
    args = parser.parse_args()
    # the "… corpus" rows ask the same questions converted to the other script: once is enough
    rows = [row for name in SETS for row in load_rows(name, args.datasets) if not row.name.endswith("corpus")]
    questions = collect(rows)
    numbered = defaultdict(int)
    tune, report = [], []
    for question in questions:
        (tune if numbered[question.row] % 2 == 0 else report).append(question)
        numbered[question.row] += 1
    weights = fit(tune)
    thresholds = choose_thresholds(tune, score(tune, RelevanceModel(weights, 0.0)), set(weights))
    model = at_one_threshold(weights, thresholds)
    print(f"weights ({', '.join(FEATURES)}, bias): {json.dumps(weights)}")
    print(f"thresholds (tuning questions: every in-corpus row's R@5 within {MAX_R5_LOSS:.0%}): {thresholds}; "
          f"biases shifted to the default, {model.default_min_relevance}\n\nreporting questions (odd-numbered):\n")
    print("| row | questions | R@5 without | R@5 at the default | abstained at the default |\n|---|---|---|---|---|")
    counts = defaultdict(int)
    for question in report:
        counts[question.row] += 1
    for name, (inside, before, after) in per_row(report, score(report, model), {"mixed": model.default_min_relevance}).items():
        print(f"| {name} | {counts[name]} | {before:.3f} | {after:.3f} |  |" if inside else
              f"| {name} | {counts[name]} |  |  | {after:.3f} |")
    if not args.dry_run:
        MODEL_FILE.write_text(json.dumps(model.to_json(), indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {MODEL_FILE}")


if __name__ == "__main__":
    main()
