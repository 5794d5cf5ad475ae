"""Retrieval on the seed corpus with the seed question set (evals/seed_questions.jsonl), all three scripts."""
import json
import time
from pathlib import Path

import pytest

import numpy as np

from stores.contract import Candidates, Scope
from stores.embedded import EmbeddedLocation
from text.bilingual import lexicon
from service.citations import best_sentence, merge_overlaps
from service.retrieval import CANDIDATES, family, FUSION_WEIGHTS, Retriever, fusion_weights
from text.normalize import detect_language, fold_script
from text.segment import keyword_tokens
from text.clean import clean

QUESTIONS = [json.loads(line) for line in (Path(__file__).resolve().parent.parent / "evals" / "seed_questions.jsonl").open(encoding="utf-8")]


@pytest.fixture(scope="module")
def retriever(seed_index, embedder):
    return Retriever(EmbeddedLocation(seed_index).open(embedder.model_id, embedder.dim), embedder)


@pytest.fixture(scope="module")
def answers(retriever):
    return {q["id"]: retriever.ask(q["question"], 5) for q in QUESTIONS}


@pytest.mark.parametrize("language", ["zh-Hans", "zh-Hant", "en"])
def test_gold_document_is_in_the_top_5(answers, language):
    questions = [q for q in QUESTIONS if q["language"] == language]
    missed = {q["id"] for q in questions if q["doc_id"] not in {h.doc_id for h in answers[q["id"]].hits}}
    assert not missed, f"{len(missed)}/{len(questions)} {language} questions missed: {missed}"


def test_detected_question_language_matches_the_set(answers):
    wrong = [q["id"] for q in QUESTIONS if answers[q["id"]].query_language != q["language"]]
    assert not wrong


def test_offsets_point_at_the_cited_text(answers, retriever):
    for answer in answers.values():
        for hit in answer.hits:
            original = retriever.store.original(hit.doc_id)
            assert clean(original[hit.start : hit.end]).text == hit.text
            if hit.highlight:
                start, end = hit.highlight
                assert 0 <= start < end <= len(hit.text)


def test_hits_are_ranked_distinct_and_scored_in_order(answers):
    for answer in answers.values():
        assert [h.rank for h in answer.hits] == list(range(1, len(answer.hits) + 1))
        scores = [h.score for h in answer.hits]
        assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
        spans = [(h.doc_id, h.start, h.end) for h in answer.hits]
        for i, (doc, start, end) in enumerate(spans):  # merged: no two hits overlap in one document
            assert all(not (d == doc and s < end and start < e) for d, s, e in spans[i + 1 :])


def test_traditional_and_simplified_questions_get_the_same_answer(retriever):
    simplified = retriever.ask("OpenAI与AWS的协议价值多少？", 5)
    traditional = retriever.ask("OpenAI與AWS的協議價值多少？", 5)
    assert [h.doc_id for h in simplified.hits] == [h.doc_id for h in traditional.hits]
    assert traditional.hits[0].doc_id == "002_88511f47bc2856da.txt"
    assert "380億美元" in traditional.hits[0].text


def test_an_english_amount_meets_the_chinese_passages_that_write_it_their_way(retriever):
    question = "which company has 1.5 billion users?"
    _, _, evidence = retriever.cite(question, 5)
    assert {"15", "亿"} <= set(evidence.translated)  # 1.5 billion is 15亿: the digits differ
    translations = lexicon().crossed_keywords(keyword_tokens(question), family("en"))

    def rank_of_the_amount(words: list[str]) -> int:
        found = retriever.store.keyword(words, 10, Scope())
        ids = found.ids[np.argsort(-found.scores, kind="stable")].tolist()
        passages = retriever.store.passages(ids)
        return next((rank for rank, pid in enumerate(ids) if "15亿" in passages[pid].folded), len(ids))

    assert rank_of_the_amount(translations + ["15", "亿"]) < rank_of_the_amount(translations)


def test_across_languages_bm25_counts_through_the_translated_keywords_and_the_pivot_words():
    dense, own, crossed, pivot = fusion_weights("en", "zh-Hant")
    assert (dense, own, crossed, pivot) == FUSION_WEIGHTS[("en", "zh")] and own == 0 and crossed > 0 and pivot > 0
    assert fusion_weights("zh-Hans", "zh-Hant")[1] > 0 and fusion_weights("zh-Hans", "zh-Hant")[2:] == (0, 0)


def candidates(scores: dict[int, float], language: str) -> Candidates:
    return Candidates(np.array(list(scores), np.int64), np.array(list(scores.values())), np.array([language] * len(scores)))


def test_fusion_scales_each_signal_and_weighs_it_by_language_pair():
    dense = candidates({1: 0.9, 2: 0.8, 3: 0.7}, "zh-Hans")  # cosines: min-max over the dense candidates
    keyword = candidates({2: 4.0, 4: 2.0}, "zh-Hans")  # BM25: divided by the best
    crossed = candidates({5: 3.0}, "en")
    pivot = candidates({5: 1.0, 6: 4.0}, "en")
    ranked = dict(Retriever._rank(dense, keyword, crossed, pivot, "zh-Hans", "hybrid"))
    # 5 and 6: zh→en weighs crossed .3 and pivot .2
    assert ranked == pytest.approx({1: 0.5, 2: 0.5 * 0.5 + 0.5, 3: 0.0, 4: 0.25, 5: 0.3 + 0.2 * 0.25, 6: 0.2})
    assert list(ranked) == [2, 1, 5, 4, 6, 3]


def test_fusion_breaks_ties_by_the_candidate_met_first_crossed_pivot_keyword_dense():
    tied, none = candidates({7: 1.0, 3: 1.0}, "en"), Candidates.empty()
    ranked = Retriever._rank(candidates({8: 0.9, 6: 0.5}, "en"), tied, candidates({9: 2.0}, "en"),
                             candidates({4: 1.0}, "en"), "en", "hybrid")
    # crossed and pivot weigh 0 between English texts
    assert ranked == [(7, 0.5), (3, 0.5), (8, 0.5), (9, 0.0), (4, 0.0), (6, 0.0)]
    assert Retriever._rank(none, none, none, none, "en", "hybrid") == []
    assert Retriever._rank(tied, tied, tied, tied, "en", "dense") == [(7, 1.0), (3, 1.0)]


def test_highlight_is_the_sentence_sharing_most_question_words():
    text = "第一句无关。微软与AWS签署了协议。第三句。"
    assert best_sentence(text, text, {"aws", "协议"}) == (6, 18)
    assert best_sentence(text, text, {"不存在"}) is None



@pytest.mark.parametrize("top_k", [1, 5, 20])
def test_reading_the_head_of_the_ranking_gives_the_hits_reading_all_of_it_gives(retriever, top_k):
    for q in QUESTIONS:
        folded = fold_script(q["question"])
        dense = retriever.store.dense(retriever.encode([q["question"]])[0], CANDIDATES, Scope())
        tokens = keyword_tokens(folded.casefold())
        keyword = retriever.store.keyword(tokens, CANDIDATES, Scope())
        language = detect_language(q["question"])
        crossed = retriever._keyword(lexicon().crossed_keywords(tokens, family(language)), Scope(), "own")
        pivot = retriever._keyword(lexicon().pivot_words(tokens), Scope(), "pivot")
        ranked = retriever._rank(dense, keyword, crossed, pivot, language, "hybrid")
        everything = retriever.store.passages([pid for pid, _ in ranked])
        expected, _ = merge_overlaps([(everything[pid], score) for pid, score in ranked], top_k)
        assert retriever._cited_spans(ranked, top_k) == expected, q["id"]


class _TimedStore:
    """The seed store, its dense search made slow (0.3 s, off the GIL as FAISS is), every call's span noted."""

    def __init__(self, store) -> None:
        self._store, self.calls = store, []

    def __getattr__(self, name):
        return getattr(self._store, name)

    def dense(self, *args):
        started = time.monotonic()
        time.sleep(0.3)
        self.calls.append(("dense", started, time.monotonic()))
        return self._store.dense(*args)

    def keyword(self, *args):
        started = time.monotonic()
        found = self._store.keyword(*args)
        self.calls.append(("keyword", started, time.monotonic()))
        return found


def test_the_keyword_side_runs_while_the_dense_search_does(retriever):
    store = _TimedStore(retriever.store)
    timed = Retriever(store, retriever.embedder)
    answer = timed.ask("微软为什么要自研AI芯片？", 5)
    ((_, _, dense_end),) = [c for c in store.calls if c[0] == "dense"]
    keyword = [c for c in store.calls if c[0] == "keyword"]
    assert len(keyword) >= 2 and all(end < dense_end for _, _, end in keyword)  # none waited for the dense search
    assert [h.doc_id for h in answer.hits] == [h.doc_id for h in retriever.ask("微软为什么要自研AI芯片？", 5).hits]
