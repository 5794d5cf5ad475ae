"""Text that remembers, for every character, the span of the original document it came from.

Cleaning is a sequence of regex substitutions on a `MappedText`. A substitution either keeps one group
of the match (a markdown link keeps its label) or writes a literal (an HTML entity becomes its
character, junk becomes ''). Kept and written characters take their spans from the original, and the
first and last of them are widened to the whole match, so a passage that ends on a link label also
covers the `](url)` behind it: re-cleaning the original slice gives back exactly the passage text.
Characters that came out of one construct share an atom number, and nothing may cut between them.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# A replacement is either the number of the group to keep (0: keep the match as it is) or a literal.
Replacement = int | str


@dataclass(frozen=True)
class MappedText:
    text: str
    starts: np.ndarray  # starts[i]: offset in the original of the first character behind text[i]
    ends: np.ndarray  # ends[i]: offset just past the last original character behind text[i]
    atoms: np.ndarray  # atoms[i] > 0: text[i] is part of a construct that must not be cut apart

    @classmethod
    def identity(cls, text: str) -> MappedText:
        positions = np.arange(len(text), dtype=np.int64)
        return cls(text, positions, positions + 1, np.zeros(len(text), dtype=np.int64))

    def can_cut_before(self, i: int) -> bool:
        return i <= 0 or i >= len(self.text) or self.atoms[i] == 0 or self.atoms[i] != self.atoms[i - 1]

    def __len__(self) -> int:
        return len(self.text)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original [start, end) behind the cleaned text[start:end] (end > start)."""
        return int(self.starts[start]), int(self.ends[end - 1])

    def sub(self, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], Replacement]) -> MappedText:
        pieces: list[MappedText] = []
        done = 0
        next_atom = int(self.atoms.max(initial=0)) + 1
        for match in pattern.finditer(self.text):
            first, last = match.span()
            if first == last:
                continue
            pieces.append(self._slice(done, first))
            pieces.append(self._replacement(match, replace(match), next_atom))
            next_atom += 1
            done = last
        if not pieces:
            return self
        pieces.append(self._slice(done, len(self.text)))
        return MappedText(
            "".join(p.text for p in pieces),
            np.concatenate([p.starts for p in pieces]),
            np.concatenate([p.ends for p in pieces]),
            np.concatenate([p.atoms for p in pieces]),
        )

    def _slice(self, start: int, end: int) -> MappedText:
        return MappedText(self.text[start:end], self.starts[start:end], self.ends[start:end], self.atoms[start:end])

    def _replacement(self, match: re.Match[str], replacement: Replacement, atom: int) -> MappedText:
        first, last = match.span()
        span_start, span_end = self.starts[first], self.ends[last - 1]
        if isinstance(replacement, str):
            n = len(replacement)
            full = np.full(n, span_start, np.int64), np.full(n, span_end, np.int64)
            return MappedText(replacement, *full, np.full(n, atom if n > 1 else 0, np.int64))
        if replacement == 0:  # the whole match, unchanged
            return self._slice(first, last)
        group_first, group_last = match.span(replacement)
        if group_first < 0 or group_first == group_last:
            return MappedText.identity("")
        piece = self._slice(group_first, group_last)
        starts, ends = piece.starts.copy(), piece.ends.copy()
        starts[0], ends[-1] = span_start, span_end
        return MappedText(piece.text, starts, ends, np.full(len(piece.text), atom, np.int64))

    def delete_spans(self, spans: list[tuple[int, int]]) -> MappedText:
        """Remove the given sorted, disjoint [start, end) ranges of the cleaned text."""
        keep = np.ones(len(self.text), dtype=bool)
        for start, end in spans:
            keep[start:end] = False
        text = "".join(ch for ch, k in zip(self.text, keep) if k)
        return MappedText(text, self.starts[keep], self.ends[keep], self.atoms[keep])
