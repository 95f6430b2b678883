"""Monitor samples over hours, kept small: each sample as taken for the last minutes, and averages
over 10 s and over a minute for longer (tiers). Pure: no I/O (monitor/sample_log.py stores them).

A tier's rows are the averages of the samples of each bucket (`step` seconds, aligned on the
clock), written once the bucket is over: a bucket cut short by a stop is not written, the raw
samples cover it. The charts of a window read the finest tier that keeps the whole window, then
the samples newer than its last row, with a gap (a null point) where the server was not sampling.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

Value: TypeAlias = float | int | None
RAW_KEEP = 15 * 60.0  # samples as taken, for the 15-minute window
TEN_SECONDS_KEEP = 3 * 3600.0  # 10-second averages: the 1-hour window in 360 points


@dataclass(frozen=True)
class GpuReading:
    util: float | None  # 0 to 1; None: not read (unavailable, offline)
    mem_used: int | None
    mem_total: int


@dataclass(frozen=True)
class Record:
    """One sample (or the average of a bucket of them)."""

    t: float
    cpu: float | None  # percent of all cores, 0 to 100; None: not read
    ram: int | None
    ram_total: int | None
    gpus: dict[int, GpuReading] = field(default_factory=dict)

    def to_json(self) -> str:
        """The stored text (t is a column of its own)."""
        data: dict[str, Any] = {"cpu": self.cpu, "ram": self.ram, "ram_total": self.ram_total}
        data["gpus"] = {str(i): [g.util, g.mem_used, g.mem_total] for i, g in self.gpus.items()}
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, t: float, text: str) -> Record:
        data = json.loads(text)
        gpus = {int(i): GpuReading(u, m, int(total)) for i, (u, m, total) in data["gpus"].items()}
        return cls(t, data["cpu"], data["ram"], data["ram_total"], gpus)


@dataclass(frozen=True)
class Tier:
    step: float  # seconds each row averages; 0: the samples as taken
    keep: float  # seconds its rows are kept


def tiers_for(keep_hours: float) -> list[Tier]:
    """Raw samples for 15 minutes, 10-second averages for 3 hours, minutes for `keep_hours`
    (each no longer than that)."""
    keep = keep_hours * 3600.0
    return [Tier(0, min(RAW_KEEP, keep)), Tier(10, min(TEN_SECONDS_KEEP, keep)), Tier(60, keep)]


def _mean(values: Iterable[float | int | None]) -> float | None:
    read = [v for v in values if v is not None]
    return sum(read) / len(read) if read else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _int(value: float | None) -> int | None:
    return None if value is None else round(value)


def average(t: float, records: Sequence[Record]) -> Record:
    """The bucket's row: means of what was read (a GPU counts only in the samples it is in);
    totals are the last known."""
    gpus: dict[int, GpuReading] = {}
    for index in sorted({i for r in records for i in r.gpus}):
        readings = [r.gpus[index] for r in records if index in r.gpus]
        gpus[index] = GpuReading(
            util=_mean(g.util for g in readings),
            mem_used=_int(_mean(g.mem_used for g in readings)),
            mem_total=readings[-1].mem_total,
        )
    totals = [r.ram_total for r in records if r.ram_total is not None]
    return Record(
        t=t,
        cpu=_mean(r.cpu for r in records),
        ram=_int(_mean(r.ram for r in records)),
        ram_total=totals[-1] if totals else None,
        gpus=gpus,
    )


class Downsampler:
    """Turns samples into the rows to store: each sample in the raw tier, and each bucket of a
    coarser tier once a sample of a later bucket shows it is over."""

    def __init__(self, tiers: Sequence[Tier]) -> None:
        self.steps = [t.step for t in tiers if t.step > 0]
        self._open: dict[float, tuple[float, list[Record]]] = {}  # step -> (bucket start, samples)

    def add(self, record: Record) -> list[tuple[float, Record]]:
        """The (step, row) pairs to store now."""
        rows: list[tuple[float, Record]] = [(0, record)]
        for step in self.steps:
            start = math.floor(record.t / step) * step
            bucket = self._open.get(step)
            if bucket is not None and bucket[0] != start:
                rows.append((step, average(bucket[0], bucket[1])))
                bucket = None
            if bucket is None:
                self._open[step] = (start, [record])
            else:
                bucket[1].append(record)
        return rows


def tier_for(tiers: Sequence[Tier], window: float) -> Tier:
    """The finest tier that keeps the whole window (else the one that keeps the longest)."""
    for tier in tiers:
        if tier.keep >= window:
            return tier
    return max(tiers, key=lambda t: t.keep)


def join(
    coarse: Sequence[Record], step: float, raw: Sequence[Record], interval: float
) -> list[tuple[Record, float]]:
    """A tier's rows, then the samples after its last bucket (not averaged yet), each with the
    seconds it stands for (`step`, or the sampling `interval` for a sample)."""
    if step <= 0 or not coarse:
        return [(r, interval) for r in raw]
    end = coarse[-1].t + step
    return [*((r, step) for r in coarse), *((r, interval) for r in raw if r.t >= end)]


def columns(
    spans: Sequence[tuple[Record, float]],
    *,
    step: float,
    interval: float,
    labels: Mapping[int, str],
) -> dict[str, Any]:
    """The charts' data (wire.SystemHistoryOut without window/now): one time column, and one
    column per series with its unit; a null point where sampling stopped for a while.

    `spans` are join()'s; `labels` name the GPUs known now (index -> label): each gets its
    series even without data. `step` is the tier's (0: the samples as taken).
    """
    times: list[float] = []
    rows: list[Record | None] = []
    last: tuple[Record, float] | None = None
    for record, span in spans:
        if last is not None and record.t - last[0].t > max(2 * last[1], 5 * interval):
            times.append(round(last[0].t + last[1], 3))  # sampling stopped: break the line
            rows.append(None)
        times.append(round(record.t, 3))
        rows.append(record)
        last = (record, span)
    records = [r for r in rows if r is not None]

    def column(get: Callable[[Record], Value]) -> list[Value]:
        return [None if r is None else get(r) for r in rows]

    def util(index: int) -> Callable[[Record], Value]:
        def get(r: Record) -> Value:
            g = r.gpus.get(index)
            return None if g is None or g.util is None else round(g.util * 100, 2)

        return get

    def memory(index: int) -> Callable[[Record], Value]:
        def get(r: Record) -> Value:
            g = r.gpus.get(index)
            return None if g is None else g.mem_used

        return get

    ram_totals = [r.ram_total for r in records if r.ram_total]
    series: list[dict[str, Any]] = [
        {"key": "cpu", "name": "CPU", "unit": "percent", "values": column(lambda r: _round(r.cpu))},
        {
            "key": "ram",
            "name": "RAM",
            "unit": "bytes",
            "values": column(lambda r: r.ram),
            "total": ram_totals[-1] if ram_totals else None,
        },
    ]
    for index in sorted({*labels, *(i for r in records for i in r.gpus)}):
        name = f"GPU {labels.get(index, str(index))}"
        totals = [r.gpus[index].mem_total for r in records if index in r.gpus]
        series += [
            {
                "key": f"gpu{index}.util",
                "name": name,
                "unit": "percent",
                "values": column(util(index)),
                "gpu": index,
            },
            {
                "key": f"gpu{index}.mem",
                "name": name,
                "unit": "bytes",
                "values": column(memory(index)),
                "gpu": index,
                "total": totals[-1] if totals else None,
            },
        ]
    return {"step": step or interval, "times": times, "series": series}
