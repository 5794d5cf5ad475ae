"""How likely a hit answers the question, 0..1: a logistic model per language pair, fitted by evals/calibrate.py.

The fused score ranks passages against each other; it says nothing about whether any of them answers (every
question gets a first hit). Absolute signals do: the hit's dense cosine, the share of the question's keywords
the hit contains (the question's own keywords within a language, their CC-CEDICT translations across), plainly and
weighted by how rare each keyword is in general (the question's rare words, a name, say more than "year"), its BM25
score per keyword (across languages: per pivot word, text/bilingual.py; that tells answered from unanswered
cross-language questions better than BM25 over the translations), how far the best dense cosine stands above the
next ones, the share of those keywords that no passage in the corpus contains at all (a question about a
team, a person or a place the documents never name), and how close the hit and the question each sit to the corpus
as a whole (their mean cosine to its passages, through the build's mean vector): a passage near everything matches
any question on its topic, and a question near everything fits any passage (hubness), most of all in a small corpus
of one subject; and, within a language, the longest run of the question's characters the hit holds unbroken (a
question asked of a passage copies a phrase of it; one about another passage on the topic shares a name). Cosines
of related texts differ by language pair (English questions over Chinese passages score ~.78 where Chinese over
Chinese scores ~.91), so each pair has its own weights. They are fitted on in-corpus questions (the gold passage
is relevant) and on questions asked against a corpus that does not hold their answer (nothing is), and stored in
relevance.json next to this file. Each pair's bias is shifted so that one default threshold applies that pair's
own (evals/calibrate.py).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from text.bilingual import STOPWORDS
from text.normalize import keyword_form
from text.segment import word_weights
from stores.contract import Candidates, StoredPassage

MODEL_FILE = Path(__file__).with_name("relevance.json")
# the model's inputs, in its weights' order (then the bias)
FEATURES = ("cosine", "coverage", "margin", "bm25", "unknown", "passage_mean_cosine", "question_mean_cosine",
            "shared_run", "weighted_coverage")
MARGIN_OF = 4  # the best dense cosine minus the mean of the next MARGIN_OF
_NOT_TEXT = re.compile(r"[\W_]+")  # spaces and punctuation: a shared run is of letters, digits and characters


@dataclass(frozen=True)
class RelevanceModel:
    weights: dict[str, tuple[float, ...]]  # "zh-en" (question family, passage family) → FEATURES' weights + bias
    default_min_relevance: float  # /api/ask's min_relevance when a request gives none

    def relevance(self, pair: str, *features: float) -> float:
        """`features` in FEATURES' order."""
        *weights, bias = self.weights.get(pair) or self.weights["mixed"]
        z = bias + sum(w * x for w, x in zip(weights, features, strict=True))
        return 1 / (1 + math.exp(-max(-60.0, min(60.0, z))))

    def to_json(self) -> dict:
        return {"features": list(FEATURES), "weights": {k: list(v) for k, v in self.weights.items()},
                "default_min_relevance": self.default_min_relevance}

    @classmethod
    def from_json(cls, document: dict) -> RelevanceModel:
        if tuple(document["features"]) != FEATURES:
            raise ValueError(f"{MODEL_FILE}: features {document['features']}, expected {list(FEATURES)}")
        return cls({k: tuple(v) for k, v in document["weights"].items()}, float(document["default_min_relevance"]))


@cache
def relevance_model() -> RelevanceModel:
    return RelevanceModel.from_json(json.loads(MODEL_FILE.read_text(encoding="utf-8")))


def family(language: str) -> str:
    return "en" if language == "en" else "mixed" if language == "mixed" else "zh"


def min_relevance_setting(configured: str | float | None) -> float:
    """The default min_relevance: QA_MIN_RELEVANCE (`configured`) when set, else the calibrated one."""
    if configured is None or configured == "":
        return relevance_model().default_min_relevance
    try:
        value = float(configured)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:
        raise ValueError(f"QA_MIN_RELEVANCE must be a number from 0 to 1, not {configured!r}")
    return value


def pair_of(question_family: str, passage_family: str) -> str:
    """The model's key: "zh-zh", "en-en", "en-zh", "zh-en", or "mixed" when either side is mixed."""
    return "mixed" if "mixed" in (question_family, passage_family) else f"{question_family}-{passage_family}"


def coverage(keywords: list[str], folded_text: str) -> float:
    """The share of distinct `keywords` found in the passage's folded, lower-cased text."""
    distinct = set(keywords)
    return sum(word in folded_text for word in distinct) / len(distinct) if distinct else 0.0


def dense_margin(cosines: list[float]) -> float:
    """The best cosine minus the mean of the next MARGIN_OF: a question whose answer is there stands out."""
    ranked = sorted(cosines, reverse=True)
    return ranked[0] - sum(ranked[1 : MARGIN_OF + 1]) / len(ranked[1 : MARGIN_OF + 1]) if len(ranked) > 1 else 0.0


def weighted_coverage(keywords: list[str], weights: dict[str, float], folded_text: str) -> float:
    """The share of the distinct keywords' summed weight (text.segment.word_weights: how rare each word is in
    general) that the passage holds: a hit with the question's rare words, a name, says more than one with "年"."""
    distinct = set(keywords)
    total = sum(weights[word] for word in distinct)
    return sum(weights[word] for word in distinct if word in folded_text) / total if total else 0.0


def shared_run(question: str, passage: str) -> float:
    """The longest run of `question` that `passage` holds unbroken, as a share of the question's length (both
    folded, lower-cased, with no spaces or punctuation: run_text)."""
    best = 0
    for start in range(len(question)):
        end = start + best + 1  # only a longer run than the best so far matters
        while end <= len(question) and question[start:end] in passage:
            best, end = end - start, end + 1
    return best / len(question) if question else 0.0


def run_text(normalized: str) -> str:
    return _NOT_TEXT.sub("", normalized)


@dataclass(frozen=True)
class Evidence:
    """What a hit's relevance is judged on, gathered once per question by the retriever."""
    question_family: str
    question_run: str  # the folded, lower-cased question as run_text, for shared_run
    question_words: set[str]  # every keyword token, for the highlight
    own: list[str]  # the question's content keywords
    translated: list[str]  # and their CC-CEDICT translations
    cosines: dict[int, float]  # passage id → dense cosine, for the dense candidates
    lowest: float  # a passage outside them scores at most this
    margin: float
    own_bm25: dict[int, float]  # passage id → BM25 of the question's keywords, per keyword
    pivot_bm25: dict[int, float]  # and of their pivot words among the passages', per pivot word
    own_unknown: float  # the share of the distinct own keywords that no passage contains (1: no keyword)
    translated_unknown: float  # and of the distinct translations
    weights: dict[str, float]  # each own keyword's and translation's weight, for weighted_coverage
    mean_cosines: dict[int, float]  # passage id → its mean cosine to the corpus's passages, for the cited hits
    question_mean_cosine: float  # the question's

    @classmethod
    def of(cls, language: str, normalized: str, query_tokens: list[str], translated: list[str], pivot_words: int,
           dense: Candidates, keyword: Candidates, pivot: Candidates, unknown: set[str], mean_cosines: dict[int, float],
           question_mean_cosine: float) -> Evidence:
        """`normalized`: the question folded and lower-cased; `pivot_words`: how many it has; `unknown`: the
        keywords (own or translated) no passage contains."""
        cosines = dense.by_id()
        own = content_words(query_tokens)
        return cls(family(language), run_text(normalized), set(query_tokens), own, translated, cosines,
                   min(cosines.values(), default=0.0), dense_margin(list(cosines.values())),
                   _per_word(keyword, len(query_tokens)), _per_word(pivot, pivot_words), _share(own, unknown),
                   _share(translated, unknown), word_weights([*own, *translated]), mean_cosines, question_mean_cosine)

    def features(self, passage: StoredPassage) -> tuple[str | float, ...]:
        """The language pair, then FEATURES: the model's inputs. Across languages the keywords are the
        translations, the BM25 is the pivot words' and no run is shared."""
        passage_family = family(passage.language)
        same = passage_family == self.question_family or "mixed" in (passage_family, self.question_family)
        keywords, bm25, unknown = ((self.own, self.own_bm25, self.own_unknown) if same else
                                   (self.translated, self.pivot_bm25, self.translated_unknown))
        text = keyword_form(passage.folded)
        return (pair_of(self.question_family, passage_family), self.cosines.get(passage.id, self.lowest),
                coverage(keywords, text), self.margin, bm25.get(passage.id, 0.0), unknown,
                self.mean_cosines[passage.id], self.question_mean_cosine,
                shared_run(self.question_run, run_text(text)) if same else 0.0, weighted_coverage(keywords, self.weights, text))

    def relevance(self, passage: StoredPassage) -> float:
        return relevance_model().relevance(*self.features(passage))


def content_words(query_tokens: list[str]) -> list[str]:
    """The question's keyword tokens that carry its topic: all but the stopwords."""
    return [t for t in query_tokens if t not in STOPWORDS]


def _share(words: list[str], unknown: set[str]) -> float:
    """The share of distinct `words` in `unknown`; 1 when there is no word ("😀"): nothing ties it to a passage."""
    distinct = set(words)
    return len(distinct & unknown) / len(distinct) if distinct else 1.0


def _per_word(candidates: Candidates, words: int) -> dict[int, float]:
    return dict(zip(candidates.ids.tolist(), (candidates.scores / max(words, 1)).tolist()))
