"""python -m service.cli ask: the API's answer from a local index, as JSON or as a table.

Two real invocations (each loads the model); the table layout is tested in-process on a fixed answer.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from flask.testing import FlaskClient

from service.cli import format_answer, main, width, wrap

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "OpenAI與AWS的協議價值多少？"
EXPECTED_DOC = "002_88511f47bc2856da.txt"


def ask(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "ask", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def test_json_is_exactly_the_api_answer(seed_index: Path, client: FlaskClient) -> None:
    result = ask(QUESTION, "--top-k", "3", "--index", str(seed_index), "--json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1  # one JSON document, nothing else on stdout
    body = json.loads(result.stdout)
    api = client.post("/api/ask", json={"question": QUESTION, "top_k": 3}).json
    assert list(body) == list(api) and isinstance(body.pop("took_ms"), float)
    api.pop("took_ms")
    assert body == api
    assert body["passages"][0]["doc_id"] == EXPECTED_DOC


def test_table_from_a_local_index(seed_index: Path) -> None:
    result = ask(f"  {QUESTION} ", "--top-k", "2", "--index", str(seed_index))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(QUESTION) and "zh-Hant question, 2 passages" in lines[0]
    assert lines[2].split() == ["#", "score", "rel.", "doc_id", "start–end", "title"]
    rank, score, relevance, doc_id, span, *title = lines[3].split()
    assert (rank, doc_id) == ("1", EXPECTED_DOC) and 0 < float(score) and 0 < float(relevance) <= 1
    assert span.count("–") == 1
    assert ">>" in result.stdout and "<<" in result.stdout  # the highlighted sentence (not a terminal: no colour)
    assert "\x1b[" not in result.stdout


def test_bad_questions_are_refused_before_loading_anything(capsys) -> None:
    assert main(["ask", "  \n "]) == 2
    assert "question is empty" in capsys.readouterr().err
    assert main(["ask", "a" * 1001]) == 2


SENTENCE = "雙方達成一項價值380億美元的協議。"
TEXT = "前文。" * 40 + SENTENCE + "後文。" * 40
ANSWER = {
    "question": "協議價值多少", "query_language": "zh-Hant", "took_ms": 12.5, "min_relevance": 0.01, "abstained": False,
    "passages": [
        {"rank": 1, "doc_id": "a.txt", "title": "標題" * 40, "text": TEXT, "start": 5, "end": 300,
         "score": 0.91234, "relevance": 0.97, "highlight": {"start": TEXT.index(SENTENCE), "end": TEXT.index(SENTENCE) + len(SENTENCE)}},
        {"rank": 2, "doc_id": "dir/b.md", "title": "English", "text": "No sentence\nmatches here. " * 20,
         "start": 0, "end": 540, "score": 0.5, "relevance": 0.4, "highlight": None},
    ],
}


def test_table_layout() -> None:
    table = format_answer(ANSWER, columns=80)
    lines = table.splitlines()
    assert all(width(line) <= 80 for line in lines), table
    assert "(zh-Hant question, 2 passages, 12.5 ms)" in lines[0]
    unwrapped = "".join(line.strip() for line in lines)
    assert f"前文。>>{SENTENCE}<<後文。" in unwrapped  # the whole sentence, marked
    assert lines[3].split()[:5] == ["1", "0.912", "0.97", "a.txt", "5–300"] and lines[3].endswith("…")
    assert "…前文" in unwrapped and "後文。…" in unwrapped  # context trimmed on both sides
    second = table[table.index("dir/b.md"):]
    assert ">>" not in second and "No sentence matches here." in second  # newlines flattened
    coloured = format_answer(ANSWER, columns=80, color=True)
    assert f"\x1b[1;33m{SENTENCE[:4]}" in coloured and ">>" not in coloured
    assert format_answer({**ANSWER, "passages": []}).endswith("no passage answers this question")
    abstained = format_answer({**ANSWER, "passages": [], "abstained": True})
    assert abstained.endswith("no passage answers this question (none reached min_relevance 0.01)")


def test_wrap_counts_wide_characters_and_keeps_latin_words_whole() -> None:
    lines = wrap("為Anthropic提供云算力 and English words " * 3, 24)
    assert all(width(line) <= 24 for line in lines)
    assert not any(line.endswith(("Anthr", "Eng")) for line in lines)


def test_pdf_passages_show_their_pages() -> None:
    pdf = {**ANSWER["passages"][0], "doc_id": "r.pdf", "page": 3, "page_end": None}
    spread = {**ANSWER["passages"][1], "doc_id": "s.pdf", "page": 3, "page_end": 4}
    lines = format_answer({**ANSWER, "passages": [pdf, spread]}, columns=100).splitlines()
    assert lines[3].split()[3:6] == ["r.pdf", "5–300", "p."] and " p. 3 " in lines[3]
    assert any("pp. 3–4" in line and "s.pdf" in line for line in lines)
