"""Text that remembers, for every character, the span of the original document it came from.

Cleaning is a sequence of regex substitutions on a `MappedText`. A substitution either keeps one group
of the match (a markdown link keeps its label) or writes a literal (an HTML entity becomes its
character, junk becomes ''). Kept and written characters take their spans from the original, and the
first and last of them are widened to the whole match, so a passage that ends on a link label also
covers the `](url)` behind it: re-cleaning the original slice gives back exactly the passage text.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# A replacement is either the number of the group to keep or a literal string.
Replacement = int | str


@dataclass(frozen=True)
class MappedText:
    text: str
    starts: np.ndarray  # starts[i]: offset in the original of the first character behind text[i]
    ends: np.ndarray  # ends[i]: offset just past the last original character behind text[i]

    @classmethod
    def identity(cls, text: str) -> MappedText:
        positions = np.arange(len(text), dtype=np.int64)
        return cls(text, positions, positions + 1)

    def __len__(self) -> int:
        return len(self.text)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original [start, end) behind the cleaned text[start:end] (end > start)."""
        return int(self.starts[start]), int(self.ends[end - 1])

    def sub(self, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], Replacement]) -> MappedText:
        texts: list[str] = []
        starts: list[np.ndarray] = []
        ends: list[np.ndarray] = []
        done = 0
        for match in pattern.finditer(self.text):
            first, last = match.span()
            if first == last:
                continue
            texts.append(self.text[done:first])
            starts.append(self.starts[done:first])
            ends.append(self.ends[done:first])
            piece, piece_starts, piece_ends = self._replacement(match, replace(match))
            texts.append(piece)
            starts.append(piece_starts)
            ends.append(piece_ends)
            done = last
        if not texts:
            return self
        texts.append(self.text[done:])
        starts.append(self.starts[done:])
        ends.append(self.ends[done:])
        return MappedText("".join(texts), np.concatenate(starts), np.concatenate(ends))

    def _replacement(self, match: re.Match[str], replacement: Replacement) -> tuple[str, np.ndarray, np.ndarray]:
        first, last = match.span()
        span_start, span_end = self.starts[first], self.ends[last - 1]
        if isinstance(replacement, str):
            n = len(replacement)
            return replacement, np.full(n, span_start, np.int64), np.full(n, span_end, np.int64)
        group_first, group_last = match.span(replacement)
        if group_first < 0 or group_first == group_last:
            return "", np.empty(0, np.int64), np.empty(0, np.int64)
        piece_starts = self.starts[group_first:group_last].copy()
        piece_ends = self.ends[group_first:group_last].copy()
        piece_starts[0], piece_ends[-1] = span_start, span_end
        return match.group(replacement), piece_starts, piece_ends

    def delete_spans(self, spans: list[tuple[int, int]]) -> MappedText:
        """Remove the given sorted, disjoint [start, end) ranges of the cleaned text."""
        keep = np.ones(len(self.text), dtype=bool)
        for start, end in spans:
            keep[start:end] = False
        text = "".join(ch for ch, k in zip(self.text, keep) if k)
        return MappedText(text, self.starts[keep], self.ends[keep])
