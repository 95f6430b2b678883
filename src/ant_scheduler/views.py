"""Pure functions from ANT's objects to the API's JSON (the shapes of wire.py), used by the
routes and by the events the engine publishes, so both always say the same."""

from __future__ import annotations

import dataclasses
from typing import Any

from ant_scheduler.core.notification import mask_url
from ant_scheduler.core.parsing import format_copy_command
from ant_scheduler.core.retries import retry_words
from ant_scheduler.core.task import Task
from ant_scheduler.gpu_pool import GpuSlot

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
    data["nodes"] = list(task.nodes)
    data["notify"] = mask_url(task.notify)  # it may hold a token: shown only where it goes
    data["retry_on"] = list(task.retry_on)
    data["attempts"] = [a.as_json() for a in task.attempts]
    data["after"] = [{"task_id": d.task_id, "condition": d.condition} for d in task.after]
    data["copy_command"] = format_copy_command(
        task.n_gpus,
        task.env,
        task.submitted,
        task.n_nodes,
        task.timeout,
        retry_words(task),
        task.after,
        task.tags,
        task.gpu_mem,
    )
    data["tags"] = list(task.tags)
    return data


def gpu_json(slot: GpuSlot, note: str | None) -> dict[str, Any]:
    """wire.GpuOut as JSON: the GPU, who holds it, and its last reading."""
    sample = slot.sample
    return {
        "index": slot.info.index,
        "uuid": slot.info.uuid,
        "name": slot.info.name,
        "enabled": slot.enabled,
        "state": slot.state,
        "task_ids": list(slot.task_ids),
        "util": sample.util if sample else 0.0,
        "mem_used": sample.mem_used if sample else 0,
        "mem_total": slot.info.mem_total,
        "external": slot.external,
        "error": slot.unavailable,
        "note": note,
        "pci_bus_id": slot.info.pci_bus_id,
        "temperature": sample.temperature if sample else None,
        "power_watts": sample.power_watts if sample else None,
        "processes": [
            {
                "pid": p.pid,
                "used_memory": p.used_memory,
                "task_id": p.task_id,
                "user": p.user,
                "command": p.command,
            }
            for p in slot.processes
        ],
        "node": slot.info.node,
        "local_index": slot.info.local,
        "label": slot.info.label,
        "mem_declared": sum(slot.declared.values()),
    }
