"""From a ranking to what is cited: passages of one document that overlap merged into one span, and the sentence
of a hit to highlight."""
from __future__ import annotations

from stores.contract import StoredPassage
from text.normalize import keyword_form, normalize
from text.sentences import sentence_spans


def merge_overlaps(ranked: list[tuple[StoredPassage, float]], top_k: int) -> tuple[list[tuple[StoredPassage, float]], bool]:
    """Walk the ranking; a passage overlapping chosen ones of its document joins them into one hit,
    which keeps the place and score of the best of them. Also says whether the walk ended before the
    ranking did (top_k hits chosen and the next passage joins none), i.e. more passages could not change them."""
    chosen: list[tuple[StoredPassage, float]] = []
    for passage, score in ranked:
        overlapping = [i for i, (kept, _) in enumerate(chosen) if _overlap(kept, passage)]
        if overlapping:
            merged = passage
            for i in overlapping:
                merged = _union(chosen[i][0], merged)
            chosen[overlapping[0]] = (merged, chosen[overlapping[0]][1])
            for i in reversed(overlapping[1:]):
                del chosen[i]
        elif len(chosen) == top_k:
            return chosen, True
        else:
            chosen.append((passage, score))
    return chosen, False


def _overlap(a: StoredPassage, b: StoredPassage) -> bool:
    return a.doc_id == b.doc_id and a.clean_start < b.clean_end and b.clean_start < a.clean_end


def _union(a: StoredPassage, b: StoredPassage) -> StoredPassage:
    first, second = (a, b) if a.clean_start <= b.clean_start else (b, a)

    def joined(head: str, tail: str) -> str:  # two overlapping slices of one cleaned text, as one
        return head + tail[first.clean_end - second.clean_start :] if second.clean_end > first.clean_end else head

    last = a if a.clean_end >= b.clean_end else b
    return StoredPassage(
        id=a.id, doc_id=a.doc_id, title=a.title, start=min(a.start, b.start), end=max(a.end, b.end),
        clean_start=first.clean_start, clean_end=max(a.clean_end, b.clean_end),
        text=joined(first.text, second.text), folded=joined(first.folded, second.folded), language=a.language,
        page=first.page, page_end=_page_end(first.page, last.page_end or last.page),
    )


def _page_end(page: int | None, last_page: int | None) -> int | None:
    return last_page if page is not None and last_page is not None and last_page > page else None


def best_sentence(text: str, folded: str, query_tokens: set[str]) -> tuple[int, int] | None:
    """The sentence containing the most question words (longer words count double), or None if none does.

    `folded` is the passage's stored fold_script form; when folding kept the length (nearly always),
    sentence spans carry over to it, so nothing is normalized again at question time.
    """
    folded = keyword_form(folded)
    aligned = len(folded) == len(text)
    best, best_score = None, 0
    for start, end in sentence_spans(text):
        sentence = folded[start:end] if aligned else normalize(text[start:end])
        score = sum(2 if len(token) > 1 else 1 for token in query_tokens if token in sentence)
        if score > best_score:
            best, best_score = (start, end), score
    return best
