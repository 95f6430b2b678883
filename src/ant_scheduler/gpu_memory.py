"""GPU memory packing, the monitor's side: a task that declared `gpu_mem` (it shares one GPU with
other such tasks) is compared, at each sample, with the GPU memory its processes really use (per
process, NVML, attributed to the task by monitor/attribution.py). Using more than it declared is
flagged — the task's `gpu_mem_over` (the most seen while over), a `gpu_mem_over` event, `ant show`
and the task page — and, with RUNNER_enforce_gpu_mem, the task is killed and ends failed.

Pure functions over a Task; the scheduler (`Scheduler.check_gpu_memory`) acts on them.
"""

from __future__ import annotations

from typing import Any

from ant_scheduler.core.sizes import format_size
from ant_scheduler.core.task import Task


def over_use(task: Task, used: int | None) -> int | None:
    """The memory the task uses now if that is more than it declared; else None."""
    if task.gpu_mem is None or used is None or used <= task.gpu_mem:
        return None
    return used


def over_message(task: Task, killed: bool) -> str:
    """For the server's log."""
    used = format_size(task.gpu_mem_over or 0)
    head = f"task {task.task_id!r} uses {used} of GPU memory, more than the"
    tail = "killing it (RUNNER_enforce_gpu_mem)" if killed else "flagged"
    return f"{head} {format_size(task.gpu_mem or 0)} it declared: {tail}"


def kill_reason(task: Task) -> str:
    """The reason of a task killed for it."""
    return (
        f"used {format_size(task.gpu_mem_over or 0)} of GPU memory, more than the "
        f"{format_size(task.gpu_mem or 0)} it declared (RUNNER_enforce_gpu_mem)"
    )


def event(task: Task, killed: bool) -> dict[str, Any]:
    """wire.GpuMemOver."""
    return {
        "task_id": task.task_id,
        "gpu_mem": task.gpu_mem,
        "used": task.gpu_mem_over,
        "gpu_ids": list(task.gpu_ids),
        "killed": killed,
    }
