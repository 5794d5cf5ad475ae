"""Relevance and abstention (service/relevance.py): every hit's relevance, min_relevance on the API and the CLI."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import create_app
from service.cli import main as cli_main
from service.relevance import (FEATURES, Evidence, RelevanceModel, coverage, dense_margin, relevance_model, run_text,
                               shared_run, weighted_coverage)
from service.retrieval import Retriever
from stores.contract import Candidates, StoredPassage
from stores.embedded import EmbeddedLocation
from text.segment import word_weights

IN_CORPUS = "OpenAI与AWS的协议价值多少？"
UNKNOWN, RUN = (1 + FEATURES.index(name) for name in ("unknown", "shared_run"))  # in Evidence.features, after the pair
NOWHERE = "谁赢得了2016年的超级碗？"  # the seed articles are about AI companies


def test_the_model_is_a_logistic_per_pair_with_a_pooled_fallback():
    model = RelevanceModel({"zh-zh": (10.0, 1.0, 0.0, 0.0, -2.0, -4.0, 0.0, -8.0), "mixed": (0.0,) * 8}, 0.2)
    others = (0.0, 0.0)  # margin, bm25
    assert model.relevance("zh-zh", 0.8, 0.0, *others, 0.0, 0.0, 0.5) == pytest.approx(1 / (1 + math.exp(0.0)))
    assert model.relevance("zh-zh", 0.9, 0.5, *others, 0.0, 0.0, 0.5) > model.relevance("zh-zh", 0.9, 0.0, *others, 0.0, 0.0, 0.5)
    assert model.relevance("zh-zh", 0.9, 0.5, *others, 1.0, 0.0, 0.5) < model.relevance("zh-zh", 0.9, 0.5, *others, 0.0, 0.0, 0.5)
    assert model.relevance("zh-zh", 0.9, 0.5, *others, 0.0, 0.6, 0.5) < model.relevance("zh-zh", 0.9, 0.5, *others, 0.0, 0.4, 0.5)
    assert model.relevance("en-zh", 0.9, 0.5, *others, 0.0, 0.0, 0.5) == 0.5  # no weights of its own: the pooled ones
    assert RelevanceModel.from_json(model.to_json()) == model
    with pytest.raises(ValueError, match="features"):
        RelevanceModel.from_json({**model.to_json(), "features": ["cosine"]})
    shipped = relevance_model()
    assert set(shipped.weights) >= {"zh-zh", "en-en", "en-zh", "zh-en", "mixed"}
    assert all(len(w) == len(FEATURES) + 1 for w in shipped.weights.values())
    assert 0 < shipped.default_min_relevance < 1


def test_coverage_and_margin():
    assert coverage(["协议", "价值", "协议"], "这份协议的金额") == 0.5  # distinct words, found or not
    assert coverage([], "anything") == 0.0
    assert dense_margin([0.9, 0.8, 0.8, 0.8, 0.8, 0.1]) == pytest.approx(0.1)  # the next four only
    assert dense_margin([0.9]) == 0.0


def _passage(language: str, folded: str = "x") -> StoredPassage:
    return StoredPassage(0, "d", "t", 0, 1, 0, 1, folded, folded, language)


def test_shared_run_is_the_longest_unbroken_run_of_the_question_within_a_language():
    assert run_text("openai与aws的协议, 价值多少？") == "openai与aws的协议价值多少"
    assert shared_run("abcdef", "xxabcyydefg") == 0.5  # "abc" and "def" apart: the longer of them
    assert shared_run("abcdef", "zz") == 0.0 and shared_run("", "abc") == 0.0
    assert shared_run("abab", "abab") == 1.0
    nothing = Candidates.empty()
    evidence = Evidence.of("zh-Hans", "协议的价值是多少？", ["协议", "价值", "多少"], ["deal", "value"], 2, nothing, nothing,
                           nothing, set(), {0: 0.8}, 0.7)
    copied = evidence.features(_passage("zh-Hans", "这份协议的价值是一百亿美元。"))[RUN]
    named = evidence.features(_passage("zh-Hans", "另一份协议签于去年。"))[RUN]
    assert copied == pytest.approx(6 / 8) and named == pytest.approx(2 / 8)  # "协议的价值是" against "协议"
    assert evidence.features(_passage("en", "the deal's value"))[RUN] == 0.0  # across languages no run is shared


def test_unknown_is_the_share_of_keywords_no_passage_contains():
    nothing = Candidates.empty()
    evidence = Evidence.of("en", "who won super bowl 50?", ["who", "won", "super", "bowl", "50"], ["赢", "超级", "碗"], 4,
                           nothing, nothing, nothing, {"super", "bowl", "超级"}, {0: 0.8}, 0.7)
    assert evidence.own == ["won", "super", "bowl", "50"]  # stopwords carry no topic
    assert evidence.features(_passage("en"))[UNKNOWN] == 0.5  # English passages: the question's own words
    assert evidence.features(_passage("zh-Hans"))[UNKNOWN] == pytest.approx(1 / 3)  # Chinese ones: the translations
    empty = Evidence.of("zh-Hans", "😀", [], [], 0, nothing, nothing, nothing, set(), {0: 0.8}, 0.7)
    assert empty.features(_passage("zh-Hans"))[UNKNOWN] == 1.0
    assert evidence.features(_passage("en"))[RUN - 2 : RUN] == (0.8, 0.7)  # the hit's and the question's mean cosines


def test_weighted_coverage_weighs_the_keywords_by_how_rare_they_are():
    weights = word_weights(["宁波府", "年", "openai", "zzz"])
    name, common = weights["宁波府"], weights["年"]
    assert name > 3 * common > 0 and weights["openai"] == weights["zzz"]  # unknown to jieba: the rarest
    assert weighted_coverage(["宁波府", "年", "年"], weights, "宁波府志") == pytest.approx(name / (name + common))
    assert weighted_coverage(["宁波府", "年"], weights, "那一年") == pytest.approx(common / (name + common))
    assert weighted_coverage([], weights, "x") == 0.0
    nothing = Candidates.empty()
    tokens = ["when", "was", "ningbo", "fu", "founded"]
    evidence = Evidence.of("en", "when was ningbo fu founded?", tokens, ["宁波府", "年"], 3, nothing, nothing, nothing,
                           set(), {0: 0.8}, 0.7)
    assert evidence.features(_passage("zh-Hans", "宁波府"))[-1] == pytest.approx(name / (name + common))  # translations
    assert evidence.features(_passage("en", "ningbo fu"))[-1] == pytest.approx(2 / 3)  # own words, equally rare


def test_bm25_per_keyword_is_the_own_keywords_within_a_language_and_the_pivot_words_across():
    nothing = Candidates.empty()
    keyword = Candidates(np.array([0]), np.array([3.0]), np.array(["en"]))
    pivot = Candidates(np.array([0]), np.array([2.0]), np.array(["en"]))
    evidence = Evidence.of("en", "openai deal worth", ["openai", "deal", "worth"], ["协议"], 4, nothing, keyword, pivot, set(), {0: 0.8}, 0.7)
    assert evidence.features(_passage("en"))[4] == 1.0  # 3.0 over three keywords
    assert evidence.features(_passage("zh-Hant"))[4] == 0.5  # 2.0 over four pivot words


def test_the_retriever_counts_the_words_no_passage_contains_and_they_lower_relevance(seed_index, embedder):
    retriever = Retriever(EmbeddedLocation(seed_index).open(embedder.model_id, embedder.dim), embedder)
    assert retriever.cite("OpenAI的合作伙伴是谁？", 5)[2].own_unknown == 0.0
    _, spans, evidence = retriever.cite("阿森纳的合作伙伴是谁？", 5)  # Arsenal: no seed article names it
    assert 0 < evidence.own_unknown < 0.5
    assert retriever.cite("Did OpenAI win the Super Bowl?", 5)[2].own_unknown == 0.75  # "openai" is known
    passage = spans[0][0]
    pair, *features = evidence.features(passage)
    unknown = UNKNOWN - 1  # in features, after the pair
    known = relevance_model().relevance(pair, *features[:unknown], 0.0, *features[unknown + 1 :])
    assert relevance_model().relevance(pair, *features) < known / 2


def test_the_mean_cosines_are_to_every_passage_of_the_corpus(seed_index, embedder):
    retriever = Retriever(EmbeddedLocation(seed_index).open(embedder.model_id, embedder.dim), embedder)
    question = "OpenAI的合作伙伴是谁？"
    _, spans, evidence = retriever.cite(question, 5)
    every = retriever.store.vectors(list(range(retriever.passage_count)))  # embedded ids: 0 … n − 1
    for passage, _ in spans:
        assert evidence.mean_cosines[passage.id] == pytest.approx(float((every @ every[passage.id]).mean()), abs=1e-5)
    assert evidence.question_mean_cosine == pytest.approx(float((every @ retriever.encode([question])[0]).mean()),
                                                          abs=1e-5)


def test_an_answerable_question_keeps_its_hits_and_an_unanswerable_one_abstains(client: FlaskClient):
    answered = client.post("/api/ask", json={"question": IN_CORPUS}).json
    assert not answered["abstained"] and answered["passages"][0]["doc_id"] == "002_88511f47bc2856da.txt"
    assert answered["passages"][0]["relevance"] > 0.5
    nowhere = client.post("/api/ask", json={"question": NOWHERE}).json
    assert nowhere["abstained"] and nowhere["passages"] == []
    assert client.post("/api/ask", json={"question": "😀"}).json["abstained"]  # no word ties it to a passage
    everything = client.get("/api/ask", query_string={"q": NOWHERE, "min_relevance": "0"}).json
    assert not everything["abstained"] and len(everything["passages"]) == 5
    assert all(p["relevance"] < answered["passages"][0]["relevance"] for p in everything["passages"])
    strict = client.post("/api/ask", json={"question": IN_CORPUS, "min_relevance": 1}).json
    assert strict["abstained"] and strict["passages"] == [] and strict["min_relevance"] == 1


def test_kept_hits_are_renumbered_from_one(client: FlaskClient):
    every = client.post("/api/ask", json={"question": IN_CORPUS, "min_relevance": 0, "top_k": 10}).json["passages"]
    middle = sorted(p["relevance"] for p in every)[len(every) // 2]
    kept = client.post("/api/ask", json={"question": IN_CORPUS, "min_relevance": middle, "top_k": 10}).json["passages"]
    assert [p["rank"] for p in kept] == list(range(1, len(kept) + 1))
    assert [p["start"] for p in kept] == [p["start"] for p in every if p["relevance"] >= middle]


def test_qa_min_relevance_sets_the_default_and_a_bad_one_stops_the_start(app: Flask, seed_index):
    with pytest.raises(ValueError, match="QA_MIN_RELEVANCE"):
        create_app({"LOAD_INDEX": False, "QA_MIN_RELEVANCE": "high"})
    lenient = create_app({"QA_INDEX": str(seed_index), "QA_MIN_RELEVANCE": "0"}).test_client()
    body = lenient.post("/api/ask", json={"question": NOWHERE}).json
    assert body["min_relevance"] == 0 and len(body["passages"]) == 5


def test_the_cli_takes_min_relevance(seed_index, capsys: pytest.CaptureFixture[str]):
    assert cli_main(["ask", NOWHERE, "--index", str(seed_index), "--json", "--min-relevance", "0"]) == 0
    assert len(json.loads(capsys.readouterr().out)["passages"]) == 5
    assert cli_main(["ask", NOWHERE, "--index", str(seed_index)]) == 0
    assert "no passage answers this question (none reached min_relevance" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main(["ask", NOWHERE, "--min-relevance", "2"])


def test_calibration_gives_each_pair_its_own_threshold_behind_one_default():
    from evals.calibrate import Question, at_one_threshold, choose_thresholds

    def asked(row: str, pair: str, relevances: list[float], in_corpus: bool = True) -> tuple[list, list]:
        questions = [Question(row, in_corpus, [(pair, (), in_corpus)]) for _ in relevances]
        return questions, [[(pair, r, in_corpus)] for r in relevances]

    # 150 questions a row: losing one is 0.67 points of R@5, two 1.33, over the 1-point rule
    en_q, en_s = asked("en", "en-en", [0.9] * 149 + [0.001])  # all but one far above any low threshold
    zh_q, zh_s = asked("zh", "zh-zh", [0.9] * 148 + [0.02, 0.03])  # above .03 it loses two: .03 bounds zh-zh
    out_q, out_s = asked("out", "en-en", [0.1] * 10, in_corpus=False)
    thresholds = choose_thresholds(en_q + zh_q + out_q, en_s + zh_s + out_s, {"en-en", "zh-zh", "mixed"})
    assert thresholds["mixed"] == thresholds["zh-zh"] == 0.03  # the default: every pair held to one threshold
    assert thresholds["en-en"] == 0.9  # en-en's own rises to its relevant hits, above the out-of-corpus .1
    weights = {"en-en": (10.0, 0, 0, 0, 0, -5.0), "zh-zh": (10.0, 0, 0, 0, 0, -5.0), "mixed": (1.0,) * 6}
    shifted, plain = at_one_threshold(weights, {"en-en": 0.3, "zh-zh": 0.02, "mixed": 0.02}), RelevanceModel(weights, 0)
    assert shifted.default_min_relevance == 0.02 and shifted.weights["zh-zh"] == weights["zh-zh"]
    for cosine in [i / 100 for i in range(101)]:
        features = (cosine, 0.0, 0.0, 0.0, 0.0)
        assert (shifted.relevance("en-en", *features) >= 0.02) == (plain.relevance("en-en", *features) >= 0.3)
