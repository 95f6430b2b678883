"""GPU-hours over a window (core/usage.py), by example: the rules docs/scheduling.md states."""

from __future__ import annotations

import pytest

from ant_scheduler.core.usage import NO_TAG, DecayedUsage, UsageRow, gpu_hours

H = 3600.0
NOW = 100 * H


def row(
    owner: str = "a", gpus: int = 1, start: float = 0, end: float | None = None, **kw: object
) -> UsageRow:
    return UsageRow(
        owner=owner,
        tags=kw.get("tags", ()),  # type: ignore[arg-type]
        gpus=gpus,
        running=end is None,
        started_at=start,
        finished_at=end,
        attempts=kw.get("attempts", ()),  # type: ignore[arg-type]
    )


def test_gpus_times_hours_inside_the_window() -> None:
    rows = [
        row("a", 2, NOW - 2 * H, NOW - 0.5 * H),  # 2 GPUs x 1.5 h = 3
        row("b", 1, NOW - 30 * H, NOW - 20 * H),  # in a 24 h window: its last 4 h
        row("c", 1, NOW - 50 * H, NOW - 40 * H),  # before the window: nothing
    ]
    assert gpu_hours(rows, NOW - 24 * H, NOW, "user") == pytest.approx({"a": 3.0, "b": 4.0})


def test_running_tasks_count_up_to_now_and_every_attempt_once() -> None:
    running = row("a", 1, NOW - H)  # 1 h so far
    retried = row(
        "b",
        1,
        NOW - 3 * H,
        NOW - 2 * H,
        attempts=((NOW - 6 * H, NOW - 5 * H), (NOW - 3 * H, NOW - 2 * H)),  # the last is its own
    )
    waiting = UsageRow("c", (), 4, False, None, None, ((NOW - H, NOW - 0.5 * H),))  # a retry waits
    hours = gpu_hours([running, retried, waiting], NOW - 24 * H, NOW, "user")
    assert hours == pytest.approx({"a": 1.0, "b": 2.0, "c": 2.0})


def test_by_tag_a_task_counts_for_each_of_its_tags() -> None:
    rows = [row("a", 1, NOW - H, NOW, tags=("x", "y")), row("b", 2, NOW - H, NOW)]
    assert gpu_hours(rows, NOW - H, NOW, "tag") == pytest.approx({"x": 1.0, "y": 1.0, NO_TAG: 2.0})


def test_decayed_usage_from_rows_leaves_running_runs_to_the_caller() -> None:
    usage = DecayedUsage.from_rows(
        [row("a", 1, NOW - H, NOW - 0.5 * H), row("a", 4, NOW - H)], NOW, 1e12
    )
    assert usage.ended("a", NOW) == pytest.approx(0.5)
    assert usage.value("a", NOW, [(4, NOW - H)]) == pytest.approx(4.5)
