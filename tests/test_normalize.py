from text.normalize import detect_language, fold_script, keyword_form, normalize
from text.segment import keyword_tokens


def test_simplified_and_traditional_spellings_normalize_identically():
    simplified = "微软与OpenAI的协议结束了Azure长达六年的云服务独占模式，数据中心的GPU。"
    traditional = "微軟與OpenAI的協議結束了Azure長達六年的雲服務獨佔模式，數據中心的GPU。"
    assert normalize(simplified) == normalize(traditional)
    assert keyword_tokens(normalize(simplified)) == keyword_tokens(normalize(traditional))


def test_width_case_pinyin_and_compatibility_ideographs():
    assert normalize("ＯｐｅｎＡＩ　１２３，協(xié)議") == "openai 123,协议"
    assert fold_script("OpenAI") == "OpenAI"  # the dense model is cased; only keyword matching folds case
    assert normalize("\uf900") == normalize("豈")  # CJK compatibility ideograph → unified


def test_language_detection():
    assert detect_language("OpenAI與AWS的協議價值多少？") == "zh-Hant"
    assert detect_language("OpenAI与AWS的协议价值多少？") == "zh-Hans"
    assert detect_language("How much is the OpenAI deal with AWS worth?") == "en"
    assert detect_language("What did 纳德拉 say about OpenAI and Azure?") == "mixed"


def test_keyword_tokens_drop_punctuation_and_lowercase():
    assert keyword_tokens(normalize("GPT-5，微软！")) == ["gpt", "5", "微软"]


def test_accented_latin_words_match_their_plain_spelling_and_keep_their_length():
    accented = "Temüjin's patron; São Paulo, Zürich, Straße, Nguyễn"
    plain = "temujin's patron; sao paulo, zurich, strasse, nguyen"
    assert normalize(accented) == plain and keyword_tokens(normalize(accented)) == keyword_tokens(plain)
    assert keyword_tokens(normalize("Zürich")) == ["zurich"]  # not z / ü / rich, which met every "rich"
    assert keyword_form("Café Ærø") == "cafe ærø"  # one letter for one; æ and ø carry no accent to drop
