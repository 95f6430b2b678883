"""GPU-hours: what each user (or tag) used over a window, and the decayed usage fair share ranks
users by. Pure: the store reads the runs (`UsageRow`), the clock is the caller's.

A run uses `gpus` GPUs (n_gpus x n_nodes) from its start to its end; a running one up to now.
A retried task's earlier attempts count as runs too. Over a window [now - window, now] only the
part of each run inside the window counts.

Decayed usage (fair share, Slurm's PriorityDecayHalfLife): a GPU-hour used `age` hours ago
counts 2^(-age / half_life). Over a run from s to e that is, in closed form,
gpus x H / ln 2 x (2^(-(now - e) / H) - 2^(-(now - s) / H)), H the half-life.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

NO_TAG = ""  # the group of a run without tags when usage is counted by tag


@dataclass(frozen=True)
class UsageRow:
    owner: str
    tags: tuple[str, ...]
    gpus: int
    running: bool
    started_at: float | None
    finished_at: float | None
    attempts: tuple[tuple[float | None, float | None], ...] = ()  # (start, end) of ended ones


def runs(row: UsageRow, now: float) -> Iterator[tuple[float, float]]:
    """The row's (start, end) intervals: its ended attempts and its current run."""
    seen = set()
    for start, end in row.attempts:
        if start is not None and end is not None:
            seen.add((start, end))
            yield start, end
    if row.started_at is not None:
        end = now if row.running else row.finished_at
        # The last attempt of an ended task is in `attempts` too: counted once.
        if end is not None and (row.started_at, end) not in seen:
            yield row.started_at, end


def gpu_hours(rows: Iterable[UsageRow], since: float, now: float, by: str) -> dict[str, float]:
    """GPU-hours inside [since, now] by owner (`by="user"`) or by tag (`by="tag"`: a run with
    two tags counts for both; one without any for NO_TAG)."""
    out: dict[str, float] = {}
    for row in rows:
        hours = 0.0
        for start, end in runs(row, now):
            overlap = min(end, now) - max(start, since)
            if overlap > 0:
                hours += overlap * row.gpus / 3600
        if hours <= 0:
            continue
        keys = (row.owner,) if by == "user" else (row.tags or (NO_TAG,))
        for key in keys:
            out[key] = out.get(key, 0.0) + hours
    return out


def decayed_hours(gpus: int, start: float, end: float, now: float, half_life: float) -> float:
    """GPU-hours of one run, each hour weighted by 2^(-its age / half_life) (seconds)."""
    if end <= start:
        return 0.0
    if half_life <= 0:
        return 0.0
    ln2 = math.log(2)
    late = 2 ** (-(now - end) / half_life)
    early = 2 ** (-(now - start) / half_life)
    return gpus * half_life / ln2 * (late - early) / 3600


@dataclass
class DecayedUsage:
    """Each user's decayed GPU-hours of ended runs, kept up to date as runs end (O(1) each).

    A value is stored with the time it was last brought up to date; reading it at `now`
    decays it by 2^(-(now - then) / half_life). Running tasks are not in here: the caller adds
    them up to now (`value(..., running=...)`), so nothing has to be updated while they run.
    """

    half_life: float  # seconds
    _values: dict[str, tuple[float, float]] = field(default_factory=dict)  # owner -> (hours, at)

    def add(self, owner: str, gpus: int, start: float, end: float, now: float) -> None:
        hours = self.ended(owner, now) + decayed_hours(gpus, start, end, now, self.half_life)
        self._values[owner] = (hours, now)

    def ended(self, owner: str, now: float) -> float:
        hours, at = self._values.get(owner, (0.0, now))
        if self.half_life <= 0:
            return 0.0
        return hours * 2 ** (-(now - at) / self.half_life)

    def value(self, owner: str, now: float, running: Iterable[tuple[int, float]] = ()) -> float:
        """Decayed GPU-hours at `now`: ended runs plus running ones (gpus, started_at)."""
        hours = self.ended(owner, now)
        for gpus, start in running:
            hours += decayed_hours(gpus, start, now, now, self.half_life)
        return hours

    def owners(self) -> list[str]:
        return sorted(self._values)

    @classmethod
    def from_rows(cls, rows: Iterable[UsageRow], now: float, half_life: float) -> DecayedUsage:
        """From the stored runs (running ones are left out: the caller adds them)."""
        usage = cls(half_life)
        for row in rows:
            for start, end in runs(row, now):
                if row.running and end == now and start == row.started_at:
                    continue
                usage.add(row.owner, row.gpus, start, end, now)
        return usage
