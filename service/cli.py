"""python -m service.cli ask "問題" [--top-k 5] [--min-relevance R] [--index DIR] [--model M] [--json]

Asks a local index directly, without a server: the same question check, retrieval and answer as POST /api/ask.
Prints the cited passages as a table (rank, score, document, offsets in the original file, title, and the passage
trimmed around its best-matching sentence, which is marked), or with --json exactly the API's JSON answer.
Exit status: 0 answered, 1 no usable index or model, 2 a bad question or argument.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import unicodedata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub here: fail fast instead of hanging on the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bar on stderr

from service import openapi  # noqa: E402  (after the environment defaults above)
from service.api import answer_json, check_question  # noqa: E402
from service.errors import ApiError  # noqa: E402

PASSAGE_COLUMNS = 240  # about three lines: the marked sentence with some context on each side
INDENT = "     "
_WHITESPACE = re.compile(r"\s+")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    ask = commands.add_parser("ask", help="answer a question from a local index")
    ask.add_argument("question")
    ask.add_argument("--top-k", type=_positive_int, default=openapi.DEFAULT_TOP_K, help="passages to return (default 5)")
    ask.add_argument("--index", type=Path, default=None, help="index folder (default: $QA_INDEX or ./index)")
    ask.add_argument("--model", default=None, help="sentence-transformers folder or hub id (default: $QA_MODEL)")
    ask.add_argument("--milvus-uri", default=None, help="ask a Milvus collection (default: $QA_MILVUS_URI)")
    ask.add_argument("--collection", default=None, help="the Milvus collection (default: $QA_COLLECTION or passages)")
    ask.add_argument("--min-relevance", type=_share, default=None,
                     help="leave out passages less relevant than this, 0..1 (default: $QA_MIN_RELEVANCE, else the "
                          "calibrated default, service/relevance.json)")
    ask.add_argument("--json", action="store_true", help="print the API's JSON answer instead of a table")
    args = parser.parse_args(argv)

    try:
        question = check_question(args.question)
    except ApiError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    from indexer.embedding import ModelMissingError
    from service.retrieval import load_retriever
    from stores import StoreConfig, locate
    from stores.contract import IndexUnusable, StoreUnavailable

    index = args.index or Path(os.environ.get("QA_INDEX", "index"))
    try:
        retriever = load_retriever(locate(StoreConfig.from_env(index, args.milvus_uri, args.collection)), args.model)
        body = answer_json(retriever, question, args.top_k, min_relevance=_min_relevance(args.min_relevance))
    except (IndexUnusable, ModelMissingError, StoreUnavailable, ValueError) as error:  # ValueError: QA_MIN_RELEVANCE
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body, ensure_ascii=False, separators=(",", ":")))  # as Flask sends it
    else:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        print(format_answer(body, shutil.get_terminal_size((100, 24)).columns, color))
    return 0


def _share(value: str) -> float:
    try:
        share = float(value)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, not {value!r}")
    return share


def _min_relevance(given: float | None) -> float:
    from service.relevance import min_relevance_setting

    return given if given is not None else min_relevance_setting(os.environ.get("QA_MIN_RELEVANCE"))


def _positive_int(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value!r}")
    return int(value)


def format_answer(body: dict, columns: int = 100, color: bool = False) -> str:
    """The API's answer as a table; the highlighted sentence between >> << (or in colour on a terminal)."""
    passages = body["passages"]
    count = f"{len(passages)} passage{'' if len(passages) == 1 else 's'}"
    lines = [f"{body['question']}  ({body['query_language']} question, {count}, {body['took_ms']} ms)", ""]
    if not passages:
        why = f" (none reached min_relevance {body['min_relevance']})" if body["abstained"] else ""
        return "\n".join([*lines, f"no passage answers this question{why}"])
    doc_width = max(len("doc_id"), *(width(p["doc_id"]) for p in passages))
    span_width = max(len("start–end"), *(len(cited_span(p)) for p in passages))
    header = f"{'#':>3}  {'score':>6}  {'rel.':>5}  {pad('doc_id', doc_width)}  {'start–end':>{span_width}}  title"
    lines.append(header)
    title_columns = max(20, columns - width(header) + len("title"))
    passage_columns = max(30, columns - len(INDENT))
    for passage in passages:
        span = cited_span(passage)
        lines.append(f"{passage['rank']:>3}  {passage['score']:>6.3f}  {passage['relevance']:>5.2f}  "
                     f"{pad(passage['doc_id'], doc_width)}  "
                     f"{span:>{span_width}}  {trim(passage['title'], title_columns)}")
        before, marked, after = excerpt(passage["text"], passage["highlight"])
        if marked:
            marked = f"\x1b[1;33m{marked}\x1b[0m" if color else f">>{marked}<<"
        for line in wrap(before + marked + after, passage_columns):
            lines.append(INDENT + line)
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def cited_span(passage: dict) -> str:
    """Offsets, and for a paginated document the page: "142–374", "1200–1410 p. 3", "1200–1620 pp. 3–4"."""
    span = f"{passage['start']}–{passage['end']}"
    if passage.get("page") is None:
        return span
    pages = f"pp. {passage['page']}–{passage['page_end']}" if passage.get("page_end") else f"p. {passage['page']}"
    return f"{span} {pages}"


def excerpt(text: str, highlight: dict | None, columns: int = PASSAGE_COLUMNS) -> tuple[str, str, str]:
    """(before, highlighted sentence, after), on one line and trimmed with … to about `columns` columns."""
    if highlight is None:
        return trim(_flat(text).strip(), columns), "", ""
    before = _flat(text[: highlight["start"]]).lstrip()
    marked = trim(_flat(text[highlight["start"]: highlight["end"]]).strip(), columns - 40)
    after = _flat(text[highlight["end"]:]).rstrip()
    room = (columns - width(marked)) // 2
    before = trim(before[::-1], room)[::-1]  # keep the end nearest the sentence
    after = trim(after, room)
    return before, marked, after


def _flat(text: str) -> str:
    """Runs of whitespace, line breaks included, as one space."""
    return _WHITESPACE.sub(" ", text)


def width(text: str) -> int:
    """Terminal columns: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1 for c in text)


def pad(text: str, columns: int) -> str:
    return text + " " * max(columns - width(text), 0)


def trim(text: str, columns: int) -> str:
    if width(text) <= columns:
        return text
    kept, used = [], 1  # room for the …
    for character in text:
        used += width(character)
        if used > columns:
            break
        kept.append(character)
    return "".join(kept).rstrip() + "…"


def wrap(text: str, columns: int) -> list[str]:
    """Break at `columns` display columns: anywhere in Chinese, at a space inside Latin words; colour codes
    take no room."""
    tokens: list[tuple[str, int]] = []  # (a character or a colour code, its columns)
    i = 0
    while i < len(text):
        if text.startswith("\x1b[", i):
            end = text.index("m", i) + 1
            tokens.append((text[i:end], 0))
            i = end
        else:
            tokens.append((text[i], width(text[i])))
            i += 1
    lines, current, used = [], [], 0
    for token, columns_taken in tokens:
        if used + columns_taken > columns and current:
            carry: list[tuple[str, int]] = []
            if _latin(token) and _latin(current[-1][0]):  # move the cut word to the next line
                cut = next((k for k in range(len(current) - 1, -1, -1) if not _latin(current[k][0])), None)
                if cut is not None and len(current) - cut < 20:
                    carry, current = current[cut + 1:], current[: cut + 1]
            lines.append("".join(t for t, _ in current).rstrip())
            current, used = carry, sum(w for _, w in carry)
            if token == " " and not current:
                continue
        current.append((token, columns_taken))
        used += columns_taken
    if current:
        lines.append("".join(t for t, _ in current).rstrip())
    return lines


def _latin(token: str) -> bool:
    return token.isascii() and token.isalnum()


if __name__ == "__main__":
    sys.exit(main())
