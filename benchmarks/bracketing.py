"""The raw rates a run's ratios divide by: the floor's, or the two measured right before and right after the run
(benchmarks/query.py), so that a ratio compares the service and the raw model under the same spell of a shared
machine, whose speed drifts by 8–15 % within an hour."""
from __future__ import annotations


def query_floor_ms(result: dict) -> float:
    """The issue's query floor: one raw encode of the question plus the FAISS search alone (p50s). The encode's is
    the mean of the two measured right before and right after the one-client run where there are, else the floor's."""
    around = result["http"]["latency"].get("raw_single_around")
    encode = sum(around) / len(around) if around else result["floor"]["questions"]["single"]["p50_ms"]
    return encode + result["floor"]["search"]["p50_ms"]


def raw_beside(load: dict, floor_rate: float) -> float:
    """The raw encoder's q/s a load run is compared with: the mean of the two measured right before and right
    after it (benchmarks/query.py) where there are, else the floor's."""
    around = load.get("raw_around")
    return sum(around) / len(around) if around else floor_rate


def by_count(per_count: dict, count: int):
    """A value keyed by a client or batch count (an int when measured, a string once read back from JSON)."""
    return next((value for key, value in per_count.items() if int(key) == count), None)


def bracketing_note(corpora: dict) -> list[str]:
    """Which raw rate each bracketed load run is divided by, against the floor's measured minutes earlier."""
    notes, kinds = [], {}
    for name, result in corpora.items():
        if around := result["http"]["latency"].get("raw_single_around"):
            kinds["single"] = ("p50 × floor by the raw encode of one question measured right before and right after "
                               "the one-client run")
            notes.append(f"{name} 1 client: one raw encode p50 {sum(around) / 2:.1f} ms (right before {around[0]:.1f}, "
                         f"after {around[1]:.1f}; the floor's {result['floor']['questions']['single']['p50_ms']:.1f}), "
                         f"so a floor of {query_floor_ms(result):.1f} ms with the FAISS search")
        for load in result["http"]["load"].values():
            if load.get("raw_around"):
                kinds["load"] = ("× raw for the most clients by the raw encoder's batches of that size measured right "
                                 "before and right after their run")
                before, after = load["raw_around"]
                floor_rate = by_count(result["floor"]["questions"]["per_second"], load["clients"])
                notes.append(f"{name} {load['clients']} clients: {raw_beside(load, 0):.1f} q/s (right before "
                             f"{before:.1f}, after {after:.1f}; the floor's {floor_rate:.1f})")
    if not notes:
        return []
    return ["Dividing " + ", and ".join(kinds.values()) + ", in the same minute as the run (benchmarks/query.py): "
            + "; ".join(notes) + ".", ""]
