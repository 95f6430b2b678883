"""Host CPU and memory readings (psutil), and the ring of recent samples the dashboard plots."""

from __future__ import annotations

import os
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import psutil


@dataclass(frozen=True)
class HostSample:
    cpu_percent: float
    per_core: list[float]
    mem_used: int
    mem_total: int
    load_avg: tuple[float, float, float]


def sample_host() -> HostSample:
    """One reading. cpu_percent is since the previous call (psutil keeps the baseline)."""
    per_core = psutil.cpu_percent(percpu=True)
    mem = psutil.virtual_memory()
    return HostSample(
        cpu_percent=sum(per_core) / len(per_core) if per_core else 0.0,
        per_core=list(per_core),
        mem_used=int(mem.total - mem.available),
        mem_total=int(mem.total),
        load_avg=os.getloadavg(),
    )


class History:
    """The last `size` monitor samples (plain dicts, ready for JSON)."""

    def __init__(self, size: int) -> None:
        self._ring: deque[dict[str, Any]] = deque(maxlen=size)

    def add(self, sample: dict[str, Any]) -> None:
        self._ring.append(sample)

    def items(self) -> list[dict[str, Any]]:
        return list(self._ring)


def host_dict(sample: HostSample) -> dict[str, Any]:
    return asdict(sample)
