"""Render a run: the terminal table, evals/results/<timestamp>.json and evals/results/latest.md."""
from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from evals.datasets import PROJECT_ROOT
from evals.metrics import METRICS, share_reaching
from evals.runner import MODES, RowResult, RunResult

RESULTS_DIR = PROJECT_ROOT / "evals" / "results"
HEADER = ["row", "questions", "mode", *METRICS, "answer@5", "page@5"]
GAP_HEADER = ["set", "Traditional row", "Simplified row", *(f"{mode} ΔR@1" for mode in MODES)]
FORMATS_HEADER = ["formats row", "seed row", *(f"{mode} ΔR@5" for mode in MODES)]
TRAILING_METRICS = ("R@1", "MRR@10")
ABSTENTION_HEADER = ["row", "questions", "R@5", "R@5 kept", "Δ", "abstained"]
TRADEOFF = (0.1, 0.2, 0.3, 0.5, 0.7)  # min_relevance values a request may give, shown beside the default


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _signed(value: float) -> str:
    return f"{value:+.3f}"


def result_cells(result: RunResult, mark: tuple[str, str]) -> list[list[str]]:
    """One line per (row, mode); the best mode of each row and metric is wrapped in `mark`."""
    lines = []
    for row in ranked_rows(result):
        best = {m: max(row.modes[mode].metrics[m] for mode in MODES) for m in METRICS}
        for i, mode in enumerate(MODES):
            scores = row.modes[mode].metrics
            values = [
                f"{mark[0]}{_number(scores[m])}{mark[1]}" if scores[m] == best[m] else _number(scores[m])
                for m in METRICS
            ]
            first = i == 0
            lines.append([row.name if first else "", str(row.questions) if first else "", mode, *values,
                          _number(row.modes[mode].answer_at_5), _number(row.modes[mode].page_at_5)])
    return lines


def ranked_rows(result: RunResult) -> list[RowResult]:
    """The rows with gold documents (all but the abstain set's)."""
    return [row for row in result.rows if row.set_name != "abstain"]


def abstention_cells(result: RunResult) -> list[list[str]]:
    """Per row at the default min_relevance: R@5 before and after leaving out less relevant hits (rows with
    gold), or the share of questions left without a hit (abstain rows, whose corpus lacks their answer)."""
    lines = []
    for row in result.rows:
        if (hybrid := row.modes["hybrid"]).relevances is None:
            continue
        reached = share_reaching(hybrid.relevances, result.min_relevance)
        if row.set_name == "abstain":
            lines.append([row.name, str(row.questions), "", "", "", _number(1 - reached)])
        else:
            before = hybrid.metrics["R@5"]
            lines.append([row.name, str(row.questions), _number(before), _number(reached),
                          _signed(reached - before), ""])
    return lines


def tradeoff_header(result: RunResult) -> list[str]:
    return ["row", "share", f"{result.min_relevance:g} (default)", *(f"{t:g}" for t in TRADEOFF)]


def tradeoff_cells(result: RunResult) -> list[list[str]]:
    """Per row, at the default and at each of TRADEOFF: R@5 kept (rows with gold) or abstained (abstain rows)."""
    lines = []
    for row in result.rows:
        if (relevances := row.modes["hybrid"].relevances) is None:
            continue
        abstain = row.set_name == "abstain"
        values = [share_reaching(relevances, t) for t in (result.min_relevance, *TRADEOFF)]
        lines.append([row.name, "abstained" if abstain else "R@5 kept",
                      *(_number(1 - v if abstain else v) for v in values)])
    return lines


def script_gaps(result: RunResult) -> list[tuple[str, RowResult, RowResult]]:
    """(set, Traditional-question row, Simplified-question row) for each set that has exactly one of each."""
    gaps = []
    for set_name in dict.fromkeys(row.set_name for row in result.rows):
        by_script = {s: [r for r in result.rows if r.set_name == set_name and r.script == s] for s in ("zh-Hant", "zh-Hans")}
        if all(len(rows) == 1 for rows in by_script.values()):
            gaps.append((set_name, by_script["zh-Hant"][0], by_script["zh-Hans"][0]))
    return gaps


def gap_cells(result: RunResult) -> list[list[str]]:
    return [
        [set_name, trad.name, simp.name,
         *(_signed(trad.modes[m].metrics["R@1"] - simp.modes[m].metrics["R@1"]) for m in MODES)]
        for set_name, trad, simp in script_gaps(result)
    ]


def format_pairs(result: RunResult) -> list[tuple[RowResult, RowResult]]:
    """(formats row, seed row) with the same question language, when the run has both."""
    seed = {row.name.removeprefix("seed "): row for row in result.rows if row.set_name == "seed"}
    return [(row, seed[lang]) for row in result.rows
            if row.set_name == "formats" and (lang := row.name.removeprefix("formats ")) in seed]


def format_cells(result: RunResult) -> list[list[str]]:
    """Formats − seed R@5 per mode: what converting the articles to PDF / .docx / HTML / GB18030 costs (target 0)."""
    return [
        [fmt.name, seed.name, *(_signed(fmt.modes[m].metrics["R@5"] - seed.modes[m].metrics["R@5"]) for m in MODES)]
        for fmt, seed in format_pairs(result)
    ]


def trailing(result: RunResult) -> list[str]:
    """Rows where the shipped fusion scores below one of the signals it fuses."""
    notes = []
    for row in ranked_rows(result):
        for metric in TRAILING_METRICS:
            hybrid = row.modes["hybrid"].metrics[metric]
            best_mode = max((m for m in MODES if m != "hybrid"), key=lambda m: row.modes[m].metrics[metric])
            baseline = row.modes[best_mode].metrics[metric]
            if hybrid < baseline:
                notes.append(f"{row.name}: hybrid {metric} {hybrid:.3f} < {best_mode} {baseline:.3f}")
    return notes


def text_table(header: list[str], lines: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines)]
    def render(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([render(header), "  ".join("-" * w for w in widths), *(render(line) for line in lines)])


def markdown_table(header: list[str], lines: list[list[str]]) -> str:
    align = ["---" if i < 3 else "---:" for i in range(len(header))]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, align, *lines])


def terminal(result: RunResult) -> str:
    parts = [text_table(HEADER, result_cells(result, ("*", ""))), "(* best of the three modes)"]
    if gaps := gap_cells(result):
        parts += ["", "Trad − Simp R@1:", text_table(GAP_HEADER, gaps)]
    if formats := format_cells(result):
        parts += ["", "formats − seed R@5:", text_table(FORMATS_HEADER, formats)]
    if abstention := abstention_cells(result):
        parts += ["", f"abstention at min_relevance {result.min_relevance:g}:", text_table(ABSTENTION_HEADER, abstention)]
    if notes := trailing(result):
        parts += ["", "hybrid below a baseline:", *(f"  {note}" for note in notes)]
    parts += ["", f"wall time {result.seconds:.1f} s; passages per index: {_passages(result)}"]
    return "\n".join(parts)


def _passages(result: RunResult) -> str:
    return ", ".join(f"{name} {info.passages}" for name, info in result.indexes.items())


def _index_lines(result: RunResult) -> list[str]:
    return [
        f"  - {name}: {info.passages} passages, built in {info.build_seconds:.0f} s"
        f"{' (earlier, reused from evals/.cache)' if info.cached else ' (in this run)'}"
        for name, info in result.indexes.items()
    ]


def markdown(result: RunResult) -> str:
    machine = result.machine
    parts = [
        "# Retrieval eval results",
        "",
        f"Run {result.started} with `python -m evals` — sets: {', '.join(result.sets)}; "
        f"questions per row: {'all' if result.limit is None else f'first {result.limit}'}; "
        f"wall time {result.seconds:.1f} s ({result.seconds / 60:.1f} min). "
        "Rows and hits are defined in evals/README.md; every mode ran over the same index and the same "
        "question vectors, asking for 10 hits.",
        "",
        "## Machine",
        "",
        f"- CPU: {machine['cpu']}, {machine['cores']} cores, {machine['ram']} RAM ({machine['os']})",
        f"- Python {machine['python']}, torch {machine['torch']}, sentence-transformers "
        f"{machine['sentence-transformers']}, onnxruntime {machine.get('onnxruntime', 'not recorded')}, "
        f"faiss-cpu {machine['faiss-cpu']}, bm25s {machine['bm25s']}",
        f"- model: {result.model_id}, passages encoded with {result.passage_backend}; passages of "
        f"{result.chunking.target_units} units, {result.chunking.overlap_units} overlapping",
        f"- store: {result.store}" + (" (a Milvus Lite server on loopback, one collection per corpus)"
                                      if result.store == "milvus" else " (SQLite + bm25s + FAISS)"),
        "- indexes (passages per corpus):",
        *_index_lines(result),
        "",
        "## Results",
        "",
        "Bold: the best of the three modes for that row and metric. answer@5: seed and formats rows; "
        "page@5: formats rows, questions about the two PDFs.",
        "",
        markdown_table(HEADER, result_cells(result, ("**", "**"))),
    ]
    if gaps := gap_cells(result):
        parts += ["", "## Traditional − Simplified R@1", "", markdown_table(GAP_HEADER, gaps)]
    if formats := format_cells(result):
        parts += ["", "## Formats − seed R@5", "", markdown_table(FORMATS_HEADER, formats)]
    if abstention := abstention_cells(result):
        parts += ["", f"## Abstention at the default min_relevance ({result.min_relevance:g})", "",
                  "Hybrid, top 5 (as /api/ask answers by default): hits whose relevance is below the threshold are "
                  "left out. Rows with gold: R@5 before and after. Abstain rows (questions asked of a corpus "
                  "without their answer): the share of questions left with no passage.", "",
                  markdown_table(ABSTENTION_HEADER, abstention),
                  "", "## Abstention at other min_relevance values", "",
                  "What a request's `min_relevance` (or QA_MIN_RELEVANCE) trades: the same hits, kept when their "
                  "relevance reaches each value.", "", markdown_table(tradeoff_header(result), tradeoff_cells(result))]
    notes = trailing(result)
    parts += ["", "## Hybrid below a baseline", "", *(f"- {note}" for note in notes or ["none"])]
    return "\n".join(parts) + "\n"


def to_json(result: RunResult) -> str:
    return json.dumps(asdict(result), ensure_ascii=False, indent=1)


def write(result: RunResult, results_dir: Path = RESULTS_DIR, name: str = "latest") -> tuple[Path, Path]:
    """evals/results/<UTC timestamp>.json (everything, per-query ranks included) and <name>.md (latest.md)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(result.started).strftime("%Y%m%dT%H%M%SZ")
    json_path, md_path = results_dir / f"{stamp}.json", results_dir / f"{name}.md"
    json_path.write_text(to_json(result) + "\n", encoding="utf-8")
    md_path.write_text(markdown(result), encoding="utf-8")
    return json_path, md_path
