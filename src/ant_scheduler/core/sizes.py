"""Amounts of GPU memory as people write them: `20G`, `512M`, `20GiB`, `1.5T`, or plain bytes.

Every unit is binary (G = GiB = 2**30 bytes), as nvidia-smi, Slurm's `--mem` and docker's `-m`
count: a task that declares `20G` on an "80 GB" card reads the same numbers as nvidia-smi shows.
Hand-written (a dozen lines) rather than a library's: the size libraries at hand read `GB` as 10**9
and would make `20G` and `20GB` differ.
"""

from __future__ import annotations

import re

from ant_scheduler.core.errors import TaskRejected

MAX_GPU_MEM = 2**50  # 1 PiB: far beyond any GPU, small enough for SQLite and JSON numbers
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGTP]?)(?:I?B)?\s*", re.IGNORECASE)


def parse_size(text: str, what: str = "gpu_mem") -> int:
    """'20G' -> 21474836480. TaskRejected (one line, says what was wrong) for anything else."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise TaskRejected(
            f"{what} must be a size such as 20G, 512M or 20GiB (binary units), got {text[:40]!r}"
        )
    number, unit = match.groups()
    return check_size(round(float(number) * _UNITS[unit.upper()]), what)


def check_size(value: int, what: str = "gpu_mem") -> int:
    """A declared amount in bytes: from 1 MiB to MAX_GPU_MEM."""
    if isinstance(value, bool) or not isinstance(value, int) or not 2**20 <= value <= MAX_GPU_MEM:
        raise TaskRejected(f"{what} must be from 1M to 1P bytes, got {value!r}")
    return value


def format_size(n_bytes: int) -> str:
    """21474836480 -> '20 GiB', 1610612736 -> '1.5 GiB', 536870912 -> '512 MiB'."""
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            text = f"{value:.1f}".rstrip("0").rstrip(".")
            return f"{text} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def short_size(n_bytes: int) -> str:
    """How a copy command writes it back: '20G', '1536M', or bytes when not a whole MiB."""
    for unit in ("P", "T", "G", "M", "K"):
        if n_bytes % _UNITS[unit] == 0:
            return f"{n_bytes // _UNITS[unit]}{unit}"
    return str(n_bytes)
