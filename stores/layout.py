"""Where each passage of an updated snapshot goes (stores/embedded.py). Passage ids stay dense, 0..count-1, because
id = SQLite row = vector row = BM25 column. A build that starts from the previous snapshot frees the ids of the
documents it deletes or replaces and appends the passages it writes after the old ones (the "pool": old ids first,
then the new passages in the order written). The layout then keeps every old passage whose id is still below the
new count where it is, fills the holes below it with the new passages and with the old passages beyond the end,
and so moves as few rows as it can: changing one document moves none but its own.
"""
from __future__ import annotations

import numpy as np


def dense_layout(live: np.ndarray, added: int) -> np.ndarray:
    """For each final id, its pool id. `live`: per old id, whether that passage stays; `added`: new passages."""
    old = len(live)
    total = int(np.count_nonzero(live)) + added
    layout = np.arange(total, dtype=np.int64)
    if total <= old:
        slots = np.flatnonzero(~live[:total])
        fillers = np.concatenate([np.flatnonzero(live[total:]) + total, old + np.arange(added)])
    else:
        slots = np.concatenate([np.flatnonzero(~live), np.arange(old, total)])
        fillers = old + np.arange(added)
    layout[slots] = fillers
    return layout


def moves(layout: np.ndarray) -> list[tuple[int, int]]:
    """(final id, pool id) of every passage whose id changes, in ascending final id: applied in that order, each
    target id is free by then (a hole, or vacated by an earlier move)."""
    changed = np.flatnonzero(layout != np.arange(len(layout)))
    return list(zip(changed.tolist(), layout[changed].tolist()))


def gather_spans(values: np.ndarray, lengths: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`values` holds spans one after another, span i `lengths[i]` long: the spans in `order`, and their lengths."""
    starts = np.cumsum(lengths) - lengths
    chosen = lengths[order]
    offsets = np.cumsum(chosen) - chosen
    positions = np.repeat(starts[order] - offsets, chosen) + np.arange(int(chosen.sum()), dtype=np.int64)
    return values[positions], chosen
