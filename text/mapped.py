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

    @classmethod
    def from_pieces(cls, pieces: list[tuple[str, int, int]]) -> MappedText:
        """Join (text, start, end) pieces. A piece as long as its span copies original[start:end] character by
        character; any other piece (an entity's character, an inserted break) maps each of its characters to the
        whole span, and a multi-character one is an atom."""
        if not pieces:
            return cls.identity("")
        texts, first_offsets, last_offsets = zip(*pieces)
        lengths = np.fromiter(map(len, texts), np.int64, len(texts))
        first, last = np.array(first_offsets, np.int64), np.array(last_offsets, np.int64)
        copied = last - first == lengths
        offsets = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        starts = np.repeat(first, lengths) + np.where(np.repeat(copied, lengths), offsets, 0)
        ends = np.where(np.repeat(copied, lengths), starts + 1, np.repeat(last, lengths))
        atomic = ~copied & (lengths > 1)
        atoms = np.repeat(np.where(atomic, np.cumsum(atomic), 0), lengths)
        return cls("".join(texts), starts, ends, atoms)

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
