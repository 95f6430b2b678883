"""Pure functions from ANT's objects to the API's JSON (the shapes of wire.py), used by the
routes and by the events the engine publishes, so both always say the same."""

from __future__ import annotations

import dataclasses
from typing import Any

from ant_scheduler.core.parsing import format_copy_command
from ant_scheduler.core.task import Task

TASK_FIELDS = tuple(f.name for f in dataclasses.fields(Task))


def task_json(
    task: Task,
    *,
    queue_position: int | None = None,
    pending_reason: str | None = None,
    gpu_mem_used: int | None = None,
    lingering_processes: int = 0,
) -> dict[str, Any]:
    """wire.TaskOut as JSON: every stored field, then what is computed when it is read."""
    data = {name: getattr(task, name) for name in TASK_FIELDS}
    data["state"] = task.state.value
    data["env"] = dict(task.env)
    data["gpu_ids"] = list(task.gpu_ids)
    data["queue_position"] = queue_position
    data["pending_reason"] = pending_reason
    data["gpu_mem_used"] = gpu_mem_used
    data["lingering_processes"] = lingering_processes
    data["copy_command"] = format_copy_command(task.task_id, task.n_gpus, task.env, task.submitted)
    return data
