"""Arbitrary Unicode through the text pipeline: nothing raises and every offset stays inside the text.

tests/test_passages.py checks that offsets cite the right text on document-like input; here the input is
anything a decoder can hand over: control characters, RTL, combining marks, emoji, compatibility ideographs,
long runs of one character.
"""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extract.html import extract_html
from indexer.passages import split_passages
from text.clean import clean
from text.normalize import detect_language, fold_script, normalize
from text.segment import keyword_tokens
from text.sentences import sentence_spans

SPECIAL = [
    "\u0000", "\u0007", "\u001b", "\u0085", "\u2028", "\u2029", "\ufeff", "\u200b", "\u200d",  # controls, separators
    "\u05e9\u05dc\u05d5\u05dd", "\u0645\u0631\u062d\u0628\u0627", "\u202e", "\u202c",  # RTL text and overrides
    "e\u0301", "\u0301\u0302\u0303", "\u1100\u1161\u11a8",  # combining marks, conjoining jamo
    "\U0001f600", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f1e8\U0001f1f3",  # emoji, ZWJ, flags
    "\uf900", "\ufa10", "\U0002f800", "\u2f00", "\U00020000",  # CJK compatibility, radicals, extension B
    "。", "！", "\n", "  ", ".", "<p>", "&amp;", "**", "](", "(xié)", "——", "ＯｐｅｎＡＩ",
]
# st.text() draws from every code point except surrogates, which can't be encoded and so never reach here
pieces = st.text() | st.sampled_from(SPECIAL) | st.tuples(st.characters(), st.integers(100, 3000)).map(
    lambda run: run[0] * run[1]
)
documents = st.lists(pieces, max_size=30).map("".join)
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(raw=documents, is_html=st.booleans())
def test_cleaning_and_chunking_keep_offsets_in_the_original(raw: str, is_html: bool) -> None:
    cleaned = clean(extract_html(raw).content if is_html else raw)
    assert all(0 <= cut <= len(cleaned.text) for cut in cleaned.breaks)
    for passage in split_passages("doc", cleaned, target=40, overlap=10):
        assert 0 <= passage.start < passage.end <= len(raw)
        assert 0 <= passage.clean_start < passage.clean_end <= len(cleaned.text)
        assert passage.text == cleaned.text[passage.clean_start : passage.clean_end]


@FUZZ
@given(text=documents)
def test_sentence_spans_are_ordered_inside_the_text(text: str) -> None:
    previous_end = 0
    for start, end in sentence_spans(text):
        assert previous_end <= start < end <= len(text)
        previous_end = end


@FUZZ
@given(text=documents)
def test_normalizing_and_tokenizing_never_raise(text: str) -> None:
    normalized = normalize(text)
    assert isinstance(fold_script(text), str)
    assert detect_language(text) in ("zh-Hans", "zh-Hant", "en", "mixed")
    assert all(isinstance(token, str) and token for token in keyword_tokens(normalized))
