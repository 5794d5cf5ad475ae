"""PDF extraction speed: a long Chinese PDF, `extract.extract(data, "pdf")` pages/s, and the share of a cold
build of that one PDF spent reading it rather than embedding.

The PDF is printed by headless Chromium from an HTML page of distinct Chinese paragraphs of the shared
datasets (CMRC 2018, DRCD, XQuAD zh; no paragraph twice, so the build embeds every passage and does not
deduplicate), in WenQuanYi as tests/fixtures/make_pdf_fixtures.py prints its fixtures (its `page`, `CSS` and
`print_pdf` are reused). Cached as benchmarks/.cache/pdf/long_zh_<pages>-v<FORMAT>.pdf; needs chromium and
fonts-wqy-microhei only when the cache is empty.

The build is `python -m indexer build --force` over a folder holding only that PDF (indexing.build): its
manifest's stage_seconds say how long the `read` stage took (extraction, cleaning, chunking, tokenizing, in a
worker process) next to `embed` (the model's encode) and the rest.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import statistics
import time
from pathlib import Path

from benchmarks import indexing
from benchmarks.corpus import CACHE
from benchmarks.loadgen import ROOT
from evals.datasets import DEFAULT_DATASETS

CHARS_PER_PAGE = 1850  # measured: Chromium's default page, WenQuanYi 15 px, line-height 1.6 (make_pdf_fixtures.py CSS)
SOURCES = ("cmrc2018/cmrc2018_trial.json", "drcd/DRCD_dev.json", "xquad/xquad.zh.json")
REPEATS = 3
FORMAT = "2"  # in the cached PDF's name: bump when the text or the page changes
# Paragraphs with characters outside the BMP (a few rare CJK Extension B+ ones, e.g. U+2B6AD in CMRC) are left
# out: on such a page extract/pdf.py's per-character fallback yields lone UTF-16 surrogates, and the build
# then skips the whole PDF ("could not be read: UnicodeEncodeError … surrogates not allowed").


def run(pages: int) -> dict:
    pdf = long_pdf(pages)
    data = pdf.read_bytes()
    from extract import extract

    seconds = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        extracted = extract(data, "pdf")
        seconds.append(time.perf_counter() - started)
    page_count = len(extracted.page_starts)
    median = statistics.median(seconds)
    corpus = CACHE / f"pdf-corpus-{pages}"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir(parents=True)
    shutil.copy(pdf, corpus / pdf.name)
    built = indexing.build(corpus, CACHE / f"index-pdf-{pages}")
    stages = built["work"]["stage_seconds"]
    total = built["build_seconds"]
    return {
        "pdf": str(pdf.relative_to(ROOT)), "bytes": len(data), "pages": page_count,
        "characters": len(extracted.original),
        "extract_seconds": seconds, "extract_median_seconds": median, "pages_per_second": page_count / median,
        "build": built,
        "read_share": stages.get("read", 0.0) / total,
        "encode_share": stages.get("encode", 0.0) / total,
        "outside_encode_share": built["outside_encode_share"],
        "extract_share_of_build": median / total,
    }


def long_pdf(pages: int) -> Path:
    target = CACHE / "pdf" / f"long_zh_{pages}-v{FORMAT}.pdf"
    if target.exists():
        return target
    fixtures = _fixtures_module()
    paragraphs = chinese_paragraphs(pages * CHARS_PER_PAGE)
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"[extraction] printing a ~{pages}-page PDF with Chromium …", flush=True)
    fixtures.print_pdf(fixtures.page("长文档：基准测试", "zh", fixtures.CSS, paragraphs), target)
    return target


def chinese_paragraphs(characters: int, datasets: Path = DEFAULT_DATASETS) -> list[str]:
    out, seen, total = [], set(), 0
    for name in SOURCES:
        for article in json.loads((datasets / name).read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                text = " ".join(paragraph["context"].split())
                if text in seen or any(ord(c) > 0xFFFF for c in text):  # outside the BMP: see above
                    continue
                seen.add(text)
                out.append(text)
                total += len(text)
                if total >= characters:
                    return out
    return out


def _fixtures_module():
    path = ROOT / "tests" / "fixtures" / "make_pdf_fixtures.py"
    spec = importlib.util.spec_from_file_location("make_pdf_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module
