"""Keywords across languages (text/bilingual.py): CC-CEDICT parsed, phrases before words, common words first."""
from __future__ import annotations

import pytest
from flask import Flask

from text import bilingual
from text.bilingual import TRANSLATIONS, lexicon, parse_cedict
from service.retrieval import Retriever
from stores.contract import Scope
from text.normalize import fold_script
from text.segment import keyword_tokens

ENTRIES = """# CC-CEDICT header comment
數據 数据 [shu4 ju4] /data/numbers/digital/
中心 中心 [zhong1 xin1] /center/heart/core/CL:個|个[ge4]/
數據中心 数据中心 [shu4 ju4 zhong1 xin1] /data center/
協議 协议 [xie2 yi4] /agreement/pact/protocol/CL:項|项[xiang4]/
協定 协定 [xie2 ding4] /agreement/accord/protocol/
同意 同意 [tong2 yi4] /to agree/to consent/to approve/
王 王 [Wang2] /surname Wang/
甲 甲 [jia3] /variant of 鉀|钾[jia3]/
""".splitlines()


def test_glosses_become_phrases_and_headwords_become_english_words():
    parsed = parse_cedict(ENTRIES)
    assert parsed.english_to_chinese["data center"] == ("数据中心",)
    assert set(parsed.english_to_chinese["agreement"]) == {"协议", "协定"}
    assert parsed.english_to_chinese["agree"] == ("同意",)  # "to agree": the leading "to" goes
    assert parsed.chinese_to_english["协议"] == ("agreement", "pact", "protocol")  # the classifier note goes
    assert "王" not in parsed.chinese_to_english and "甲" not in parsed.chinese_to_english  # no meaning, no words


def test_an_english_question_takes_its_longest_phrases_and_skips_stopwords():
    parsed = parse_cedict(ENTRIES)
    crossed = parsed.crossed_keywords(["where", "is", "the", "data", "center"], "en")
    assert "数据中心" in crossed and "数据" in crossed  # jieba's search mode also gives the compound's words
    assert crossed[-2:] == ["data", "center"]  # and the content words as written (names in Chinese text)
    assert parsed.crossed_keywords(["data", "agreement"], "en")[:1] == ["数据"]
    assert parsed.crossed_keywords(["openai", "s", "gpt", "4", "2019"], "en") == ["openai", "gpt", "2019"]
    assert parsed.crossed_keywords(["数据", "协议", "aws"], "zh") == ["data", "numbers", "digital", "agreement", "pact",
                                                                    "protocol"]  # Latin names stay in own-word BM25
    assert parsed.crossed_keywords(["数据"], "mixed") == []


def test_a_long_gloss_gives_the_name_it_starts_with():
    parsed = parse_cedict(["華沙 华沙 [Hua2 sha1] /Warsaw, capital of Poland/",
                           "成吉思汗 成吉思汗 [Cheng2 ji2 si1 han2] /Genghis Khan (1162-1227), founder of the Mongols/",
                           "走 走 [zou3] /to walk, to go, to move/"])
    assert parsed.english_to_chinese["warsaw"] == ("华沙",) and "capital" not in parsed.english_to_chinese
    assert parsed.english_to_chinese["genghis khan"] == parsed.english_to_chinese["khan"] == ("成吉思汗",)
    assert parsed.english_to_chinese["walk"] == ("走",) and "walk" in parsed.verbal
    assert "go" not in parsed.english_to_chinese  # only the first part of a long gloss


def test_an_inflected_word_or_phrase_finds_the_gloss_of_its_lemma_and_a_listed_form_stays_itself():
    parsed = parse_cedict(ENTRIES)
    assert parsed.crossed_keywords(["agreements"], "en")[:2] == list(parsed.english_to_chinese["agreement"])
    assert parsed.crossed_keywords(["agreed"], "en") == ["agreed"]  # a verb's forms: only as written
    assert "数据中心" in parsed.crossed_keywords(["data", "centers"], "en")  # a phrase: its last word's lemma
    listed = parse_cedict([*ENTRIES, "協定 协定 [xie2 ding4] /agreements/"])
    assert listed.crossed_keywords(["agreements"], "en")[0] == "协定"


def test_the_shipped_dictionary_translates_common_words_most_frequent_first():
    real = lexicon()
    assert real.english_to_chinese["agreement"][0] in {"协议", "协定", "同意"}
    assert "协议" in real.english_to_chinese["agreement"][:TRANSLATIONS]
    assert "microsoft" in real.chinese_to_english["微软"]


@pytest.fixture(scope="module")
def retriever(app: Flask) -> Retriever:
    return app.extensions["qa_state"].current.retriever


def test_a_later_process_reads_the_parsed_dictionary_from_the_cache_and_a_damaged_copy_is_parsed_anew(tmp_path,
                                                                                                      monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    parsed = bilingual._cached_lexicon()
    (cached,) = (tmp_path / "bilingual-qa").glob("cedict-*.json")
    assert parsed == lexicon()  # the same as this process's own parse
    stamp = cached.stat().st_mtime_ns
    assert bilingual._cached_lexicon() == parsed and cached.stat().st_mtime_ns == stamp  # read, not rewritten
    cached.write_text('{"truncated": ', encoding="utf-8")
    assert bilingual._cached_lexicon() == parsed
    assert cached.stat().st_size > 1_000_000 and list(cached.parent.iterdir()) == [cached]


def test_an_english_question_finds_the_chinese_passage_by_its_translated_keywords(retriever: Retriever):
    question = "How much is the agreement between OpenAI and AWS worth?"
    tokens = keyword_tokens(fold_script(question).casefold())
    own = retriever.store.keyword([t for t in tokens if t not in {"openai", "aws"}], 10, Scope())
    translated = lexicon().crossed_keywords([t for t in tokens if t not in {"openai", "aws"}], "en")
    crossed = retriever._keyword(translated, Scope(), "own")
    found = retriever.store.passages(own.ids.tolist() + crossed.ids.tolist())
    assert "002_88511f47bc2856da.txt" not in {found[pid].doc_id for pid in own.ids.tolist()}  # its own words, names aside
    assert "002_88511f47bc2856da.txt" in {found[pid].doc_id for pid in crossed.ids.tolist()}


def test_pivot_words_are_english_stems_of_both_languages():
    parsed = parse_cedict(ENTRIES)
    assert parsed.pivot_words(["数据中心", "协议", "王"]) == ["data", "center", "agreement", "pact", "protocol"]
    assert parsed.pivot_words(["the", "agreements", "were", "protocols", "s", "2019"]) == [
        "agreement", "protocol", "2019"]  # stems, stopwords and one-letter tokens left out
    assert parsed.pivot_words(["centers", "中心"]) == ["center", "center", "heart", "core"]


def test_an_english_question_finds_the_chinese_passage_by_its_glossed_words(retriever: Retriever):
    """The pivot side alone, without the names both languages write alike: the passages' own words, glossed."""
    question = "How much is the agreement between OpenAI and AWS worth?"
    tokens = [t for t in keyword_tokens(fold_script(question).casefold()) if t not in {"openai", "aws"}]
    pivot = retriever._keyword(lexicon().pivot_words(tokens), Scope(), "pivot")
    found = retriever.store.passages(pivot.ids.tolist())
    assert "002_88511f47bc2856da.txt" in {found[pid].doc_id for pid in pivot.ids.tolist()[:5]}
