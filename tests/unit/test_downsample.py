"""The charts' samples made small (monitor/downsample.py, pure) and kept in the store
(monitor/sample_log.py over a real SQLite file, with a clock the test moves)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ant_scheduler.core.task import TaskState
from ant_scheduler.monitor.downsample import (
    Downsampler,
    GpuReading,
    Record,
    Tier,
    average,
    columns,
    join,
    tier_for,
    tiers_for,
)
from ant_scheduler.monitor.sample_log import PRUNE_EVERY, WRITE_EVERY, SampleLog
from ant_scheduler.store import Store
from tests.unit.test_store import task

GIB = 1 << 30


def rec(t: float, cpu: float | None = 10.0, util: float | None = 0.5) -> Record:
    gpu = GpuReading(util, None if util is None else int(util * 8 * GIB), 16 * GIB)
    return Record(t, cpu, 4 * GIB, 32 * GIB, {0: gpu})


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------------- pure


def test_tiers_keep_raw_minutes_ten_seconds_and_minutes_for_the_hours_kept() -> None:
    assert tiers_for(24) == [Tier(0, 900), Tier(10, 3 * 3600), Tier(60, 24 * 3600)]
    assert tiers_for(1) == [Tier(0, 900), Tier(10, 3600), Tier(60, 3600)]
    tiers = tiers_for(48)
    assert [tier_for(tiers, w).step for w in (60, 900, 901, 3600, 86400, 48 * 3600)] == [
        0,
        0,
        10,
        10,
        60,
        60,
    ]
    assert tier_for(tiers, 10**9).step == 60  # longer than kept: the longest there is


def test_a_bucket_is_written_once_a_later_sample_shows_it_is_over() -> None:
    down = Downsampler(tiers_for(24))
    rows = [row for t in range(0, 125, 2) for row in down.add(rec(1_800_000_000 + t, cpu=t))]
    raw = [r for step, r in rows if step == 0]
    tens = [r for step, r in rows if step == 10]
    minutes = [r for step, r in rows if step == 60]
    assert len(raw) == 63  # every sample as taken
    # Buckets aligned on the clock (1_800_000_000 is a multiple of 60); the last ones are open.
    assert [r.t - 1_800_000_000 for r in tens] == list(range(0, 120, 10))
    assert [r.t - 1_800_000_000 for r in minutes] == [0, 60]
    assert tens[0].cpu == pytest.approx((0 + 2 + 4 + 6 + 8) / 5)
    assert minutes[1].cpu == pytest.approx(sum(range(60, 120, 2)) / 30)


def test_averages_skip_what_was_not_read_and_keep_the_last_totals() -> None:
    a = Record(0, 20.0, 2 * GIB, 32 * GIB, {0: GpuReading(1.0, 4 * GIB, 16 * GIB)})
    b = Record(1, None, None, None, {0: GpuReading(None, None, 16 * GIB)})
    c = Record(2, 40.0, 4 * GIB, 64 * GIB, {1: GpuReading(0.2, GIB, 8 * GIB)})
    row = average(0, [a, b, c])
    assert (row.cpu, row.ram, row.ram_total) == (30.0, 3 * GIB, 64 * GIB)
    assert row.gpus == {0: GpuReading(1.0, 4 * GIB, 16 * GIB), 1: GpuReading(0.2, GIB, 8 * GIB)}
    nothing = average(5, [b])
    assert (nothing.cpu, nothing.ram, nothing.gpus[0].util) == (None, None, None)
    assert Record.from_json(7, row.to_json()) == Record(7, 30.0, 3 * GIB, 64 * GIB, row.gpus)


def test_columns_have_units_totals_labels_and_a_gap_where_sampling_stopped() -> None:
    samples = [rec(100), rec(101, util=None), rec(102), rec(200)]  # a restart after 102
    data = columns(
        join([], 0, samples, 1.0), step=0, interval=1.0, labels={0: "node-a:0", 3: "node-b:1"}
    )
    assert data["step"] == 1.0
    assert data["times"] == [100, 101, 102, 103, 200]
    by_key = {s["key"]: s for s in data["series"]}
    assert list(by_key) == ["cpu", "ram", "gpu0.util", "gpu0.mem", "gpu3.util", "gpu3.mem"]
    assert by_key["cpu"]["unit"] == "percent" and by_key["ram"]["unit"] == "bytes"
    assert by_key["ram"]["total"] == 32 * GIB
    assert by_key["gpu0.util"]["values"] == [50.0, None, 50.0, None, 50.0]
    assert by_key["gpu0.util"]["name"] == "GPU node-a:0"
    assert by_key["gpu0.mem"]["total"] == 16 * GIB
    assert by_key["gpu3.mem"]["values"] == [None] * 5  # known now, no samples yet
    assert by_key["cpu"]["values"][3] is None


def test_join_puts_the_samples_after_the_last_bucket() -> None:
    coarse = [rec(0), rec(60)]
    raw = [rec(t) for t in (100, 119, 120, 121)]
    joined = join(coarse, 60, raw, 1.0)
    assert [(r.t, span) for r, span in joined] == [(0, 60), (60, 60), (120, 1.0), (121, 1.0)]
    data = columns(joined, step=60, interval=1.0, labels={})
    assert data["times"] == [0, 60, 120, 121]  # no gap: consecutive buckets and their samples


# ---------------------------------------------------------------------------- stored


def test_samples_are_written_in_batches_and_survive_reopening(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "ant.db"
    store = Store(path)
    log = SampleLog(store, 24, 1.0, clock)
    start = clock.now
    for _ in range(int(WRITE_EVERY) - 1):
        log.add(rec(clock.now))
        clock.now += 1
    assert store.samples(0, 0) == []  # not one write per sample
    assert len(log.window(900, {})["times"]) == 4  # what waits is read too
    while clock.now < start + 200:
        log.add(rec(clock.now))
        clock.now += 1
    log.write()  # as the engine does when it stops
    store.close()

    reopened = SampleLog(Store(path), 24, 1.0, clock)
    fifteen = reopened.window(900, {0: "0"})
    assert fifteen["step"] == 1.0 and len(fifteen["times"]) == 200
    assert fifteen["times"][0] == start
    hour = reopened.window(3600, {0: "0"})
    assert hour["step"] == 10
    # 10-second averages while they are over, then the samples of the bucket still open.
    assert hour["times"][:2] == [start, start + 10]
    assert hour["times"][-1] == start + 199
    assert all(v == 50.0 for v in hour["series"][2]["values"])
    day = reopened.window(86400, {})
    assert day["step"] == 60 and day["times"][:3] == [start, start + 60, start + 120]


def test_old_rows_are_pruned_per_tier(tmp_path: Path) -> None:
    clock = Clock()
    store = Store(tmp_path / "ant.db")
    log = SampleLog(store, 1, 5.0, clock)  # one hour kept
    start = clock.now
    while clock.now < start + 2 * 3600:
        log.add(rec(clock.now))
        clock.now += 5
    clock.now += PRUNE_EVERY
    log.write()
    raw, tens, minutes = (store.samples(step, 0) for step in (0, 10, 60))
    assert raw[0][0] >= clock.now - 900 and tens[0][0] >= clock.now - 3600
    assert minutes[0][0] >= clock.now - 3600
    assert len(raw) < 200 and len(minutes) <= 61


def test_a_locked_database_keeps_the_samples_for_the_next_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock()
    store = Store(tmp_path / "ant.db")
    log = SampleLog(store, 24, 1.0, clock)
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the database
    try:
        for _ in range(12):
            log.add(rec(clock.now))
            clock.now += 1
        assert len(log.window(900, {})["times"]) == 12  # still shown
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert capsys.readouterr().err.count("monitor samples not saved") == 1  # said once
    log.add(rec(clock.now))
    log.write()
    assert len(store.samples(0, 0)) == 13


def test_timeline_and_failure_counts_read_the_window_off_indexes(tmp_path: Path) -> None:
    store = Store(tmp_path / "ant.db")
    # 100,000 tasks that ended long ago, then the few of the window.
    old = [
        task(f"old-{i:06d}", TaskState.SUCCEEDED, started_at=i, finished_at=i + 1.0, gpu_ids=[0])
        for i in range(100_000)
    ]
    recent = [
        task("gpu-ok", TaskState.SUCCEEDED, started_at=1e6, finished_at=1e6 + 5, gpu_ids=[1, 2]),
        task("gpu-bad", TaskState.FAILED, started_at=1e6, finished_at=1e6 + 9, gpu_ids=[0]),
        task("cpu-bad", TaskState.FAILED, started_at=1e6, finished_at=1e6 + 9, exit_code=3),
        task("never-ran", TaskState.FAILED, finished_at=1e6 + 1, gpu_ids=[]),
        task("too-long", TaskState.TIMED_OUT, started_at=1e6, finished_at=1e6 + 9),
        task("running", TaskState.RUNNING, started_at=1e6, gpu_ids=[3]),
    ]
    store.insert_tasks(old + recent)
    rows = store.gpu_intervals(1e6, 100)
    assert [(r[0], r[2], r[5]) for r in rows] == [
        ("gpu-bad", "failed", [0]),
        ("gpu-ok", "succeeded", [1, 2]),
    ]
    assert rows[1][3:5] == (1e6, 1e6 + 5)
    assert [r[0] for r in store.gpu_intervals(1e6, 1)] == ["gpu-bad"]  # newest ends first
    assert store.count_ended_since([TaskState.FAILED], 1e6) == 3
    assert store.count_ended_since([TaskState.FAILED], 1e6 + 2) == 2
    assert store.count_ended_since([TaskState.FAILED, TaskState.TIMED_OUT], 1e6 + 2) == 3
    # Both read the window through an index: the cost follows the window, not the history.
    for sql in (
        "SELECT 1 FROM tasks INDEXED BY tasks_finished WHERE finished_at >= 1 "
        "AND started_at IS NOT NULL AND gpu_ids != '[]' ORDER BY finished_at DESC LIMIT 5",
        "SELECT COUNT(*) FROM tasks WHERE state IN ('failed', 'timed_out') AND finished_at >= 1",
    ):
        plan = " ".join(str(row[-1]) for row in store._read("EXPLAIN QUERY PLAN " + sql))
        assert plan.startswith("SEARCH tasks USING") and "INDEX" in plan, plan
