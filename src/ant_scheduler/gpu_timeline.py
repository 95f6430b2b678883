"""The GPU timeline: which task held each GPU over a window, as bars (wire.GpuTimelineOut).

Ended tasks come from the store (Store.gpu_intervals: the tasks that ended in the window, off the
finished_at index), running ones from the engine's memory (their bars reach now). Every GPU the
pool knows gets a row, bars or not, so idle GPUs show as empty rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ant_scheduler.core.task import Task, TaskState
from ant_scheduler.gpu_pool import GpuSlot

MAX_BARS = 10_000  # tasks per answer: the newest ends are kept
COMMAND_CHARS = 300


def _bar(
    task_id: str, command: str, state: str, start: float, end: float | None, code: int | None
) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "command": command[:COMMAND_CHARS],
        "state": state,
        "start": start,
        "end": end,
        "exit_code": code,
    }


def timeline(
    ended: Sequence[tuple[Any, ...]],
    running: Iterable[Task],
    slots: Iterable[GpuSlot],
    *,
    since: float,
    now: float,
    truncated: bool,
) -> dict[str, Any]:
    """`ended` are Store.gpu_intervals rows; a task in `running` too is shown as running."""
    bars: dict[int, list[dict[str, Any]]] = {}
    live = {t.task_id: t for t in running if t.started_at is not None and t.gpu_ids}
    for task in live.values():
        assert task.started_at is not None
        bar = _bar(task.task_id, task.command, TaskState.RUNNING.value, task.started_at, None, None)
        for index in task.gpu_ids:
            bars.setdefault(index, []).append(bar)
    for task_id, command, state, start, end, gpu_ids, code in ended:
        if task_id in live:
            continue
        bar = _bar(task_id, command, state, start, end, code)
        for index in gpu_ids:
            bars.setdefault(index, []).append(bar)
    gpus = []
    known = {s.index: s for s in slots}
    for index in sorted({*known, *bars}):
        slot = known.get(index)
        gpus.append(
            {
                "index": index,
                "label": (slot.info.label if slot else "") or str(index),
                "node": slot.info.node if slot else "",
                "bars": sorted(bars.get(index, []), key=lambda b: (b["start"], b["task_id"])),
            }
        )
    return {"since": since, "now": now, "gpus": gpus, "truncated": truncated}
