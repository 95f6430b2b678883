"""ADGS (auto-detect GPU status): when is a GPU busy because of someone outside ANT?

Pure logic fed with samples and their times. A GPU becomes busy-external once outside use has
been present for a whole window and its average over that window reaches a threshold; it is free
again only after a whole window in which no sample reached a threshold. Both edges need a full
window, so a GPU cannot flap between the two on short spikes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

PRESENT_UTIL = 0.05
PRESENT_MEM = 0.01


@dataclass(frozen=True)
class AdgsConfig:
    usage_threshold: float = 0.5
    mem_threshold: float = 0.5
    window: float = 20.0


@dataclass(frozen=True)
class ExternalUse:
    """What of one GPU sample is not ANT's: utilisation and memory, as fractions."""

    util: float
    mem: float
    processes: bool  # processes outside ANT are visible on the GPU

    @property
    def present(self) -> bool:
        return self.processes or self.util >= PRESENT_UTIL or self.mem >= PRESENT_MEM


def external_use(
    *,
    util: float,
    mem_used: int,
    mem_total: int,
    external_mem: int,
    external_processes: bool,
    ant_owned: bool,
) -> ExternalUse:
    """Split a sample: with an ANT task on the GPU (or in its start-up grace), utilisation is
    ANT's and only memory of processes outside ANT counts; otherwise all use is external."""
    total = max(1, mem_total)
    if ant_owned:
        return ExternalUse(0.0, external_mem / total, external_processes)
    return ExternalUse(util, max(external_mem, mem_used) / total, external_processes)


@dataclass
class _GpuWindow:
    samples: deque[tuple[float, ExternalUse]] = field(default_factory=deque)
    busy: bool = False


class AdgsTracker:
    def __init__(self, config: AdgsConfig) -> None:
        self.config = config
        self._gpus: dict[int, _GpuWindow] = {}

    def update(self, index: int, now: float, use: ExternalUse) -> bool:
        """Add a sample; return whether the GPU is busy outside ANT now."""
        state = self._gpus.setdefault(index, _GpuWindow())
        state.samples.append((now, use))
        window = self.config.window
        # Keep one sample at or before the window's start, so "covered" can be judged.
        while len(state.samples) > 1 and state.samples[1][0] <= now - window:
            state.samples.popleft()
        covered = now - state.samples[0][0] >= window
        if not covered:
            return state.busy
        inside = [u for t, u in state.samples if t > now - window] or [use]
        above = [self._above(u) for u in inside]
        if not state.busy:
            present = all(u.present for _, u in state.samples)
            mean_util = sum(u.util for u in inside) / len(inside)
            mean_mem = sum(u.mem for u in inside) / len(inside)
            if present and (
                mean_util >= self.config.usage_threshold or mean_mem >= self.config.mem_threshold
            ):
                state.busy = True
        elif not any(above):
            state.busy = False
        return state.busy

    def _above(self, use: ExternalUse) -> bool:
        return use.util >= self.config.usage_threshold or use.mem >= self.config.mem_threshold

    def is_busy(self, index: int) -> bool:
        state = self._gpus.get(index)
        return bool(state and state.busy)
