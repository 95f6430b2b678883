"""The monitor samples the dashboard charts, kept in the store so a restart does not blank them.

Each sample goes through the Downsampler (monitor/downsample.py) into rows that wait here and are
written together every few seconds, without an fsync (one small transaction, not one per
sample); old rows are pruned once a minute. A failing database costs samples, never the monitor:
the rows wait (up to a bound) and are tried again. Used on the event loop's thread only, as the
store is.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from ant_scheduler.core.errors import StoreUnavailable
from ant_scheduler.monitor.downsample import (
    Downsampler,
    Record,
    columns,
    join,
    tier_for,
    tiers_for,
)
from ant_scheduler.store import Store

WRITE_EVERY = 5.0  # seconds between writes
PRUNE_EVERY = 60.0
MAX_WAITING = 20_000  # rows kept while the database refuses them (the oldest go first)


class SampleLog:
    def __init__(
        self, store: Store, keep_hours: float, interval: float, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval
        self.tiers = tiers_for(keep_hours)
        self._down = Downsampler(self.tiers)
        self._waiting: list[tuple[float, Record]] = []  # (step, row) not written yet
        self._written_at = clock()
        self._pruned_at = float("-inf")
        self._failing: str | None = None  # the last write error said (once)

    def add(self, record: Record) -> None:
        self._waiting += self._down.add(record)
        del self._waiting[:-MAX_WAITING]
        if self.clock() - self._written_at >= WRITE_EVERY:
            self.write()

    def write(self) -> None:
        """Write the rows waiting, and prune when due (what fails is tried again later)."""
        now = self._written_at = self.clock()
        try:
            if self._waiting:
                self.store.add_samples([(s, r.t, r.to_json()) for s, r in self._waiting])
                self._waiting.clear()
            if now - self._pruned_at >= PRUNE_EVERY:
                self.store.prune_samples({t.step: now - t.keep for t in self.tiers})
                self._pruned_at = now
            self._failing = None
        except StoreUnavailable as exc:  # StoreBusy too: the next write tries again
            if exc.message != self._failing:
                print(f"ant: monitor samples not saved: {exc.message}", file=sys.stderr)
                self._failing = exc.message

    def window(self, seconds: float, labels: Mapping[int, str]) -> dict[str, Any]:
        """wire.SystemHistoryOut for the last `seconds`: the finest tier keeping them all, then
        the samples after its last row."""
        now = self.clock()
        since = now - seconds
        tier = tier_for(self.tiers, seconds)
        coarse = self._rows(tier.step, since) if tier.step > 0 else []
        raw = self._rows(0, coarse[-1].t + tier.step if coarse else since)
        data = columns(
            join(coarse, tier.step, raw, self.interval),
            step=tier.step,
            interval=self.interval,
            labels=labels,
        )
        return {"window": seconds, "now": now, **data}

    def _rows(self, step: float, since: float) -> list[Record]:
        stored = [Record.from_json(t, data) for t, data in self.store.samples(step, since)]
        newest = stored[-1].t if stored else float("-inf")
        waiting = [r for s, r in self._waiting if s == step and r.t >= since and r.t > newest]
        return stored + waiting
