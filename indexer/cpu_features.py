"""What this CPU's instructions allow: the /proc/cpuinfo flags lower precision needs.

AVX-512 bf16 or AMX bf16 give bf16 matrix products a hardware path (oneDNN), AVX-512 / AVX VNNI and AMX int8 give
int8 dot products one. Without them torch emulates bf16 through fp32 and is slower than fp32 itself (measured,
AMD EPYC 2 cores, 64 passages: fp32 3.8 s, bf16 autocast 7.5 s with oneDNN held to AVX-512 without bf16, 14.3 s
held to AVX2; 2.4 s with the bf16 instructions)."""
from __future__ import annotations

from functools import cache
from pathlib import Path

LOWER_PRECISION_FLAGS = ("avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")  # bf16 or int8 paths
FLAGS = ("avx2", "fma", "avx512f", *LOWER_PRECISION_FLAGS)


@cache
def cpu_flags() -> dict[str, bool]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    present = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    return {flag: flag in present for flag in FLAGS}


def has_bf16(flags: dict[str, bool] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return flags.get("avx512_bf16", False) or flags.get("amx_bf16", False)


def has_int8_dot(flags: dict[str, bool] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return any(flags.get(flag, False) for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))


def lower_precision_flags() -> list[str]:
    return [flag for flag in LOWER_PRECISION_FLAGS if cpu_flags()[flag]]
