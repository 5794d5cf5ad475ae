"""Eval sets as rows: a corpus (documents to index), questions, and each question's gold documents.

SQuAD-format sets (XQuAD, DRCD, CMRC 2018) become one document per paragraph (`<lang>/p0001.txt`) and
one query per question, whose gold is that paragraph. The seed set is the project's own corpus/ with
evals/seed_questions.jsonl; the formats set (evals/formats.py) is the same articles as PDF, .docx, HTML and
GB18030 text, with the same questions. The abstain set asks questions of a corpus that does not hold their
answer (no gold): the relevance model (service/relevance.py) should say that nothing answers them.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path

from text.convert import converter as script_converter


PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEED_CORPUS = PROJECT_ROOT / "corpus"
SEED_QUESTIONS = PROJECT_ROOT / "evals" / "seed_questions.jsonl"
DEFAULT_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
SETS = ("xquad", "drcd", "cmrc", "seed", "formats", "abstain")
LOCAL_SETS = ("seed", "formats")  # need no ../shared/datasets


@dataclass(frozen=True)
class Corpus:
    name: str  # also the cache folder: evals/.cache/<name>/
    files: dict[str, bytes]  # path relative to the corpus root (= doc_id) → file bytes

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0" + hashlib.sha256(self.files[path]).digest())
        return digest.hexdigest()

    def write(self, root: Path) -> None:
        for path, data in self.files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    gold: frozenset[str]  # doc_ids; a hit is a returned passage of any of them
    answer: str | None = None  # the answer string (seed and formats sets), for answer@5 and page@5


@dataclass(frozen=True)
class Row:
    name: str
    set_name: str
    corpus: Corpus
    queries: tuple[Query, ...]
    script: str | None = None  # "zh-Hans" / "zh-Hant" for rows compared in the Trad−Simp gap

    def limited(self, limit: int | None) -> Row:
        return self if limit is None else replace(self, queries=self.queries[:limit])


@dataclass(frozen=True)
class Paragraph:
    context: str
    questions: tuple[tuple[str, str], ...]  # (question id, question)


def read_squad(path: Path) -> list[Paragraph]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [
        Paragraph(p["context"], tuple((qa["id"], qa["question"]) for qa in p["qas"]))
        for article in data
        for p in article["paragraphs"]
    ]


def doc_id(lang: str, index: int) -> str:
    return f"{lang}/p{index + 1:04d}.txt"


def squad_corpus(name: str, by_lang: dict[str, list[Paragraph]]) -> Corpus:
    return Corpus(name, {
        doc_id(lang, i): p.context.encode("utf-8") for lang, paragraphs in by_lang.items() for i, p in enumerate(paragraphs)
    })


def squad_queries(paragraphs: list[Paragraph], lang: str, gold_langs: Iterable[str],
                  convert: Callable[[str], str] = str) -> tuple[Query, ...]:
    """One query per question (text passed through `convert`); gold: its paragraph in each gold language."""
    gold_langs = tuple(gold_langs)
    return tuple(
        Query(f"{lang}:{qid}", convert(question), frozenset(doc_id(g, i) for g in gold_langs))
        for i, p in enumerate(paragraphs)
        for qid, question in p.questions
    )


def converter(config: str) -> Callable[[str], str]:
    return script_converter(config).convert


def xquad_rows(datasets: Path) -> list[Row]:
    zh, en = (read_squad(datasets / "xquad" / f"xquad.{lang}.json") for lang in ("zh", "en"))
    if len(zh) != len(en):
        raise ValueError(f"XQuAD zh and en are not parallel: {len(zh)} vs {len(en)} paragraphs")
    corpora = {
        "zh": squad_corpus("xquad-zh", {"zh": zh}),
        "en": squad_corpus("xquad-en", {"en": en}),
        "mixed": squad_corpus("xquad-mixed", {"zh": zh, "en": en}),
    }
    paragraphs = {"zh": zh, "en": en}
    rows = [
        Row(f"xquad {q}→{c}", "xquad", corpora[c], squad_queries(paragraphs[q], q, [c]))
        for q, c in (("en", "zh"), ("zh", "zh"), ("en", "en"), ("zh", "en"))
    ]
    both = ("zh", "en")
    pairs = zip(squad_queries(zh, "zh", both), squad_queries(en, "en", both))
    rows.append(Row("xquad mixed", "xquad", corpora["mixed"], tuple(chain.from_iterable(pairs))))  # interleaved for --limit
    return rows


def script_pair_rows(set_name: str, corpus: Corpus, paragraphs: list[Paragraph], native: str, config: str) -> list[Row]:
    """The set's own questions, and the same questions converted to the other script, over one corpus."""
    other = "zh-Hans" if native == "zh-Hant" else "zh-Hant"
    return [
        Row(f"{set_name} {native}", set_name, corpus, squad_queries(paragraphs, native, [native]), native),
        Row(f"{set_name} {other}→{native[3:]} corpus", set_name, corpus,
            squad_queries(paragraphs, other, [native], converter(config)), other),
    ]


def drcd_rows(datasets: Path) -> list[Row]:
    paragraphs = read_squad(datasets / "drcd" / "DRCD_dev.json")
    return script_pair_rows("drcd", squad_corpus("drcd-dev", {"zh-Hant": paragraphs}), paragraphs, "zh-Hant", "t2s")


def cmrc_rows(datasets: Path) -> list[Row]:
    paragraphs = read_squad(datasets / "cmrc2018" / "cmrc2018_trial.json")
    return script_pair_rows("cmrc", squad_corpus("cmrc-trial", {"zh-Hans": paragraphs}), paragraphs, "zh-Hans", "s2t")


def seed_rows(corpus_root: Path = SEED_CORPUS, questions: Path = SEED_QUESTIONS) -> list[Row]:
    corpus = Corpus("seed-corpus", {
        p.relative_to(corpus_root).as_posix(): p.read_bytes() for p in sorted(corpus_root.rglob("*")) if p.is_file()
    })
    records = [json.loads(line) for line in questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [
        Row(f"seed {lang}", "seed", corpus, tuple(
            Query(r["id"], r["question"], frozenset([r["doc_id"]]), r["answer"]) for r in records if r["language"] == lang
        ), lang if lang != "en" else None)
        for lang in ("zh-Hans", "zh-Hant", "en")
    ]


XQUAD_EARLY, XQUAD_LATE = 115, 120  # abstain: questions of paragraphs [0, 115) over paragraphs [120, 240)


def abstain_rows(datasets: Path) -> list[Row]:
    """Out-of-corpus questions: XQuAD's first articles over its last ones (each language pair), CMRC over DRCD
    and back, XQuAD over the seed articles. Paragraphs 115–119 are skipped: one article may straddle the cut."""
    xquad = {lang: read_squad(datasets / "xquad" / f"xquad.{lang}.json") for lang in ("zh", "en")}
    drcd, cmrc = read_squad(datasets / "drcd" / "DRCD_dev.json"), read_squad(datasets / "cmrc2018" / "cmrc2018_trial.json")
    late = {lang: Corpus(f"xquad-{lang}-late", {doc_id(lang, i): p.context.encode("utf-8")
                                                 for i, p in enumerate(ps) if i >= XQUAD_LATE})
            for lang, ps in xquad.items()}
    seed = seed_rows()[0].corpus

    def unanswerable(paragraphs: list[Paragraph], lang: str) -> tuple[Query, ...]:
        return squad_queries(paragraphs, lang, ())  # no gold language: no gold document

    return [
        *(Row(f"xquad {q}→{c} elsewhere", "abstain", late[c], unanswerable(xquad[q][:XQUAD_EARLY], q))
          for q, c in (("en", "zh"), ("zh", "zh"), ("en", "en"), ("zh", "en"))),
        Row("cmrc over drcd", "abstain", squad_corpus("drcd-dev", {"zh-Hant": drcd}), unanswerable(cmrc, "zh-Hans")),
        Row("drcd over cmrc", "abstain", squad_corpus("cmrc-trial", {"zh-Hans": cmrc}), unanswerable(drcd, "zh-Hant")),
        *(Row(f"xquad {lang} over seed", "abstain", seed, unanswerable(xquad[lang], lang)) for lang in ("en", "zh")),
    ]


def _formats_rows() -> list[Row]:
    from evals.formats import formats_rows  # prints PDFs with Chromium on first use (then cached)

    return formats_rows()


def load_rows(set_name: str, datasets: Path = DEFAULT_DATASETS) -> list[Row]:
    loaders: dict[str, Callable[[], list[Row]]] = {
        "xquad": lambda: xquad_rows(datasets),
        "drcd": lambda: drcd_rows(datasets),
        "cmrc": lambda: cmrc_rows(datasets),
        "seed": seed_rows,
        "formats": _formats_rows,
        "abstain": lambda: abstain_rows(datasets),
    }
    if set_name not in loaders:
        raise ValueError(f"unknown eval set {set_name!r}; choose from {', '.join(SETS)}")
    return loaders[set_name]()
