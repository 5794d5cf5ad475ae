"""Answer a question: normalize it, get candidates from BM25 and the dense index, fuse, merge, cite.

Fusion is a weighted sum of four scores, each scaled to 0..1 over the candidates (cosine min-max
over the dense top CANDIDATES, BM25 divided by its best): dense, BM25 over the question's own keywords,
BM25 over its keywords in the other language, and BM25 over its pivot words against the passages' pivot words
(English stems; both text/bilingual.py), weighted by question language × passage language (FUSION_WEIGHTS).
Measured on XQuAD (R@1; /tmp experiments recorded in evals/README.md):
  zh→zh: BM25 .918, dense .914, rank fusion (RRF) .934, this fusion .950
  en→en: BM25 .917, dense .939, RRF .945, this fusion .963
  en→zh: dense .728, BM25 .067; zh→en: dense .671, BM25 .104. Across languages BM25 over the question's
         own words only matches shared Latin names; over its translated keywords it lifts R@1 by ~.06 (en→zh)
         and ~.11 (zh→en); pivot words lift en→zh by ~.04 more and zh→en R@5 by ~.02.
Score fusion beats RRF because it keeps BM25's confidence: a rare shared term (AWS) lifts a passage
far above the rest, which ranks alone would flatten.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from indexer.embedding import Encoder, load_embedder, question_backend
from service import metrics
from service.batching import QuestionBatcher
from service.citations import best_sentence, merge_overlaps
from text.bilingual import lexicon
from service.relevance import Evidence, content_words, family
from text.normalize import Language, detect_language, fold_script, keyword_form
from text.numerals import amounts_across
from text.segment import keyword_tokens
from stores.contract import Candidates, KeywordSide, PassageStore, Scope, StoredDocument, StoredPassage, StoreLocation

Mode = Literal["hybrid", "dense", "bm25"]  # the shipped fusion, and each signal alone (eval baselines)
CANDIDATES = 100  # per signal; fusion and merging pick top_k from their union
FIRST_READ = 3  # × top_k passages read first for merging (478 seed + datasets questions: none needed more)
Weights = tuple[float, float, float, float]  # dense, BM25 over the question's keywords, translations, pivot words
# (question family, passage family) → Weights; a family is "zh", "en" or "mixed". The crossed and pivot weights
# were chosen on the first half of each XQuAD cross-language row and checked on the second (evals/README.md).
FUSION_WEIGHTS: dict[tuple[str, str], Weights] = {
    ("zh", "zh"): (0.5, 0.5, 0.0, 0.0),
    ("en", "en"): (0.5, 0.5, 0.0, 0.0),
    ("zh", "en"): (0.5, 0.1, 0.3, 0.2),
    ("en", "zh"): (0.5, 0.0, 0.2, 0.3),
}
# Not measured (no eval set has mixed-language questions): between the same- and cross-language weights.
MIXED_WEIGHTS = (0.5, 0.3, 0.0, 0.0)
WARM_UP_QUESTIONS = ("这是什么？", "這是什麼？", "What is this?")
# The dense search runs here while the request's thread does the keyword side: FAISS searches on one thread
# without the GIL (stores/faiss_index.py), so a lone question's two halves take both cores instead of one.
_DENSE_SEARCHES = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dense-search")


@dataclass(frozen=True)
class Hit:
    rank: int
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    score: float
    highlight: tuple[int, int] | None
    language: str  # the script/language of the cited document: zh-Hans, zh-Hant, en or mixed
    page: int | None = None  # paginated documents: the page the passage starts on
    page_end: int | None = None  # and the page it ends on, when later
    relevance: float = 0.0  # how likely it answers the question, 0..1 (service/relevance.py)


@dataclass(frozen=True)
class Answer:
    question: str
    query_language: Language
    hits: list[Hit]
    abstained: bool = False  # there were passages, none as relevant as min_relevance asked


def fusion_weights(query_language: str, passage_language: str) -> Weights:
    question, passage = family(query_language), family(passage_language)
    if "mixed" in (question, passage):
        return MIXED_WEIGHTS
    return FUSION_WEIGHTS[(question, passage)]


class Retriever:
    def __init__(self, store: PassageStore, embedder: Encoder) -> None:
        self.store = store
        self.embedder = embedder
        self._batcher = QuestionBatcher(embedder.queries, lanes=embedder.parallel_calls)  # concurrent asks share encodes
        self._mean_vector = np.asarray(store.manifest["mean_vector"], dtype=np.float32)

    @property
    def build_id(self) -> str:
        return self.store.manifest["build_id"]

    @property
    def passage_count(self) -> int:
        return self.store.passage_count

    def document(self, doc_id: str) -> StoredDocument | None:
        return self.store.document(doc_id)

    def encode(self, questions: list[str]) -> np.ndarray:
        return self.embedder.queries([fold_script(q) for q in questions])

    def warm_up(self) -> None:
        """Answer one question per script so that the first real one does not pay for jieba's dictionary,
        OpenCC's tables, simplemma's English lemmas and the first forward pass (about 1.5 s together)."""
        for question in WARM_UP_QUESTIONS:
            self.ask(question, 1)

    def ask(self, question: str, top_k: int, mode: Mode = "hybrid", vector: np.ndarray | None = None,
            scope: Scope = Scope(), min_relevance: float = 0.0) -> Answer:
        """`vector`: the question's embedding if already computed (evals encode questions in batches).
        `scope` filters both signals before their top candidates are taken, not the answer afterwards;
        `min_relevance` does filter the answer: hits less relevant (service/relevance.py) are left out."""
        language, spans, evidence = self.cite(question, top_k, mode, vector, scope)
        hits = [self._hit(p, score, evidence) for p, score in spans]
        relevant = [hit for hit in hits if hit.relevance >= min_relevance]
        return Answer(question, language, [replace(hit, rank=rank) for rank, hit in enumerate(relevant, 1)],
                      abstained=bool(hits) and not relevant)

    def cite(self, question: str, top_k: int, mode: Mode = "hybrid", vector: np.ndarray | None = None,
             scope: Scope = Scope()) -> tuple[Language, list[tuple[StoredPassage, float]], Evidence]:
        """The question's language, its top_k passages (overlaps merged) with their scores, and the evidence
        their relevance is judged on (evals/calibrate.py fits the relevance model on it)."""
        folded = fold_script(question)  # once: OpenCC is pure Python
        # encode first: the less Python runs before it, the more concurrent questions share a batch
        embedded = self._batcher.embed(folded) if vector is None else vector
        with metrics.ASK_SECONDS.labels("search").time():
            searching = self._dense(embedded, scope) if mode != "bm25" else None
            language = detect_language(question)
            normalized, question_family = keyword_form(folded), family(language)
            query_tokens = keyword_tokens(normalized)
            translated = (lexicon().crossed_keywords(query_tokens, question_family)
                          + amounts_across(normalized, question_family))
            keyword = self.store.keyword(query_tokens, CANDIDATES, scope) if mode != "dense" else Candidates.empty()
            crossed = self._keyword(translated, scope, "own") if mode == "hybrid" else Candidates.empty()
            pivot_words = lexicon().pivot_words(query_tokens)
            pivot = self._keyword(pivot_words, scope, "pivot") if mode == "hybrid" else Candidates.empty()
            unknown = self._unknown(content_words(query_tokens) + translated)
            dense = searching.result() if searching is not None else Candidates.empty()
        with metrics.ASK_SECONDS.labels("fusion").time():
            ranked = self._rank(dense, keyword, crossed, pivot, language, mode)
            spans = self._cited_spans(ranked, top_k)
            mean_cosines = self._mean_cosines([passage.id for passage, _ in spans])
        evidence = Evidence.of(language, normalized, query_tokens, translated, len(pivot_words), dense, keyword, pivot,
                               unknown, mean_cosines, float(embedded @ self._mean_vector))
        return language, spans, evidence

    def _dense(self, vector: np.ndarray, scope: Scope) -> Future[Candidates]:
        return _DENSE_SEARCHES.submit(self.store.dense, vector, CANDIDATES, scope)

    def _keyword(self, words: list[str], scope: Scope, side: KeywordSide) -> Candidates:
        """BM25 candidates for the question's translations or pivot words (text/bilingual.py), if it has any."""
        return self.store.keyword(words, CANDIDATES, scope, side) if words else Candidates.empty()

    def _unknown(self, words: list[str]) -> set[str]:
        """The words no passage contains (the relevance model's "unknown" feature)."""
        distinct = list(dict.fromkeys(words))
        return {word for word, known in zip(distinct, self.store.known(distinct)) if not known}

    def _mean_cosines(self, ids: list[int]) -> dict[int, float]:
        """Each passage's mean cosine to the corpus's passages (the relevance model's hubness feature)."""
        return dict(zip(ids, (self.store.vectors(ids) @ self._mean_vector).tolist())) if ids else {}

    def _cited_spans(self, ranked: list[tuple[int, float]], top_k: int) -> list[tuple[StoredPassage, float]]:
        """The top_k hits after merging overlaps. Reading passages costs ~5 µs each, so only the head of the
        ranking is read first; all of it only when merging used up the head."""
        for count in (FIRST_READ * top_k, len(ranked)):
            head = ranked[:count]
            passages = self.store.passages([pid for pid, _ in head])
            spans, complete = merge_overlaps([(passages[pid], score) for pid, score in head], top_k)
            if complete or count >= len(ranked):
                return spans
        raise AssertionError("unreachable: the last pass reads the whole ranking")

    @staticmethod
    def _rank(dense: Candidates, keyword: Candidates, crossed: Candidates, pivot: Candidates, language: str,
              mode: Mode) -> list[tuple[int, float]]:
        """(passage id, score) best first: one signal alone, or all scaled to 0..1 and weighted."""
        if mode != "hybrid":
            chosen = dense if mode == "dense" else keyword
            return _best_first(chosen.ids, chosen.scores)
        signals = (crossed, pivot, keyword, dense)
        ids, first, slot = np.unique(np.concatenate([c.ids for c in signals]), return_index=True, return_inverse=True)
        crossed_part, pivot_part, keyword_part, dense_scores = _spread(signals, slot, len(ids))
        lowest, highest = (dense.scores.min(), dense.scores.max()) if len(dense) else (0.0, 1.0)
        dense_scores[~np.isin(ids, dense.ids)] = lowest  # 0 after scaling, like the dense candidates' worst
        dense_part = np.maximum(dense_scores - lowest, 0.0) / max(highest - lowest, 1e-9)
        languages = np.concatenate([c.languages for c in signals])[first]
        names, which = np.unique(languages, return_inverse=True)
        weights = np.array([fusion_weights(language, name) for name in names]).reshape(-1, 4)[which]
        parts = np.stack([dense_part, keyword_part / _best(keyword), crossed_part / _best(crossed),
                          pivot_part / _best(pivot)], axis=1)
        fused = (weights * parts).sum(axis=1)
        order = np.lexsort((first, -fused))  # ties: the candidate met first (crossed, pivot, keyword, dense) first
        return list(zip(ids[order].tolist(), fused[order].tolist()))

    @staticmethod
    def _hit(passage: StoredPassage, score: float, evidence: Evidence) -> Hit:
        return Hit(
            rank=0,  # numbered once the hits below min_relevance are left out
            doc_id=passage.doc_id,
            title=passage.title,
            text=passage.text,
            start=passage.start,
            end=passage.end,
            score=round(float(score), 4),
            highlight=best_sentence(passage.text, passage.folded, evidence.question_words),
            language=passage.language,
            page=passage.page,
            page_end=passage.page_end,
            relevance=round(evidence.relevance(passage), 3),
        )


def _best_first(ids: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
    order = np.argsort(-scores, kind="stable")
    return list(zip(ids[order].tolist(), scores[order].tolist()))


def _spread(signals: tuple[Candidates, ...], slot: np.ndarray, count: int) -> list[np.ndarray]:
    """Each signal's scores over all `count` candidates (0 where it has none); `slot` places the concatenated ids."""
    parts, start = [], 0
    for candidates in signals:
        part = np.zeros(count)
        part[slot[start : start + len(candidates)]] = candidates.scores
        parts.append(part)
        start += len(candidates)
    return parts


def _best(candidates: Candidates) -> float:
    """What scales a BM25 signal to 0..1: its best score (1 when there is none)."""
    best = float(candidates.scores.max()) if len(candidates) else 0.0
    return best or 1.0


def load_retriever(location: StoreLocation, model: str | None) -> Retriever:
    """Questions are encoded on ONNX Runtime when the model was exported, unless QA_BACKEND says otherwise."""
    return retriever_for(location, load_embedder(model, question_backend(model), side_by_side=True, packed=True))


def retriever_for(location: StoreLocation, embedder: Encoder) -> Retriever:
    """A retriever over the published build reusing an embedder already loaded (a reload never loads the model twice)."""
    return Retriever(location.open(embedder.model_id, embedder.dim), embedder)
