"""Passages: sentence-aware, bounded, overlapping, and every offset points at the text it cites."""
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.passages import split_passages, units
from text.clean import clean

CORPUS = Path(__file__).resolve().parent.parent / "corpus"

FRAGMENTS = [
    "微软与OpenAI的协议。", "協(xié)議價值380億美元！", "數(shù)據(jù)中心", "250吉瓦(gigawatts)", "纳德拉(Satya Nadella)",
    "[异常激烈](https://twitter.com/x?s=20)", "![]()", "![图](a.png)", "## 标题", "**重点**", "*斜体*", "[跨句。标签](u)", "[U.S. Steel](u)", "#", "C# ", "&amp;", "<b>粗</b>",
    "<p>", "<!-- c -->", "OpenAI is large. ", "GPT-3.5 is 3.5x faster? ", "Yes! ", "；", "，", " ", "  ", "\n", "\n\n",
    "\n加载中...\n", "\n关键词: OpenAI\n", "\n对文章打分\n", "ＯｐｅｎＡＩ", "「卖H100」", "——", "…",
]
documents = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=8), max_size=60).map("".join)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=documents, target=st.integers(10, 80))
def test_cleaning_the_cited_original_reproduces_the_passage(raw, target):
    cleaned = clean(raw)
    for passage in split_passages("doc", cleaned, target=target, overlap=target // 4):
        assert 0 <= passage.start < passage.end <= len(raw)
        assert passage.text == cleaned.text[passage.clean_start : passage.clean_end]
        assert clean(raw[passage.start : passage.end]).text == passage.text


def test_seed_corpus_passages_cover_the_text_in_order_with_overlap():
    for path in sorted(CORPUS.glob("*.txt")):
        raw = path.read_text(encoding="utf-8")
        cleaned = clean(raw)
        passages = split_passages(path.name, cleaned)
        assert passages, path.name
        for passage in passages:
            assert clean(raw[passage.start : passage.end]).text == passage.text
            assert units(passage.text) <= 200
        for before, after in zip(passages, passages[1:]):
            assert before.clean_start < after.clean_start <= before.clean_end + 1
        covered = "".join(cleaned.text[p.clean_start : p.clean_end] for p in passages)
        assert set(covered) >= set(cleaned.text) - {"\n"}


def test_a_sentence_is_split_only_when_it_alone_exceeds_the_limit():
    text = "短句一。" + "很长的一句话，" * 30 + "结束。短句二。"
    passages = split_passages("d", clean(text), target=40, overlap=0)
    assert passages[0].text.startswith("短句一。")
    assert all(units(p.text) <= 40 for p in passages)
    assert passages[-1].text.endswith("短句二。")
    for p in passages:  # no passage starts or ends inside a short sentence
        assert not p.text.startswith("句一") and not p.text.endswith("短句")
