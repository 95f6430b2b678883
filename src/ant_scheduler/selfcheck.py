"""The self-check (`ant doctor`): compare the store, the engine's memory and the live task
processes, and list every difference. The reliability tests run it after every scenario."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ant_scheduler.core.task import TaskState

if TYPE_CHECKING:
    from ant_scheduler.engine import Engine


def cuda_ids(value: str | None) -> list[int]:
    """GPU indices of a CUDA_VISIBLE_DEVICES value ("0,1" -> [0, 1]); other entries skipped."""
    return [int(part) for part in (value or "").split(",") if part.strip().isdigit()]


def self_check(engine: Engine) -> dict[str, Any]:
    """Compare the store, the engine's memory and the live processes; list every difference.

    Changes that are waiting to be written (a locked database) are reported as pending, not
    as problems.
    """
    problems: list[str] = []
    stored = {t.task_id: t for t in engine.store.load_tasks([TaskState.RUNNING])}
    stored_queued = {t.task_id for t in engine.store.load_tasks([TaskState.QUEUED])}
    pending, unsaved_pids = engine.unwritten
    for task_id, task in engine.running.items():
        row = stored.get(task_id)
        if row is None:
            problems.append(f"task {task_id!r} runs, but the store says it does not")
        elif row.gpu_ids != task.gpu_ids:
            problems.append(
                f"task {task_id!r} holds GPUs {task.gpu_ids}; the store says {row.gpu_ids}"
            )
    for task_id in stored.keys() - engine.running.keys():
        problems.append(f"the store says {task_id!r} runs, but ANT does not run it")
    for task_id in stored_queued ^ engine.queued.keys():
        where = "the store" if task_id in stored_queued else "ANT's queue"
        problems.append(f"task {task_id!r} is queued only in {where}")
    # Every queued task is in the start order, waiting out a retry backoff, waiting for its
    # dependencies, or aside while a tag of it is paused (scheduler.set_tag_paused).
    waiting = len(engine._backoffs) + len(engine.waits) + len(engine.aside)
    if (engine.queue or waiting) and len(engine.queue) + waiting != len(engine.queued):
        problems.append("the queue order and the queued tasks disagree")
    for task_id in engine.queued:
        places = (
            task_id in engine.queue,
            task_id in engine.waits,
            task_id in engine._backoffs,
            task_id in engine.aside,
        )
        if sum(places) != 1:
            problems.append(f"task {task_id!r} is queued but not in exactly one place")
            break
    holders: dict[tuple[str, int], set[str]] = {}  # (node, index there) -> tasks
    for slot in engine.gpus.in_order():
        for task_id in slot.task_ids:
            if task_id not in engine.running and task_id not in engine.lingering:
                problems.append(f"GPU {slot.info.index} is held by {task_id!r}, not active")
        if len(slot.task_ids) > 1:
            problems.append(f"GPU {slot.info.index} is given to {', '.join(slot.task_ids)}")
    for task in engine.running.values():
        for index in task.gpu_ids:
            held = engine.gpus.slots.get(index)
            if held is not None and task.task_id not in held.task_ids:
                problems.append(f"task {task.task_id!r} runs on GPU {index}, not held for it")
    watched = engine.executor.running_ids()
    for task_id in engine.running.keys() - watched - pending:
        problems.append(f"task {task_id!r} runs, but no process of it is watched")
    processes = engine.executor.scan()
    for proc in processes:
        task_id = proc.task_id
        if task_id not in engine.running and task_id not in engine.lingering:
            problems.append(
                f"process {proc.pid} of task {task_id!r} is alive, but the task is not active"
            )
        for index in cuda_ids(proc.cuda_visible_devices):
            holders.setdefault((proc.node, index), set()).add(task_id)
    for (node, index), owners in sorted(holders.items()):
        if len(owners) > 1:
            gpu = f"{node}:{index}" if node else str(index)
            problems.append(
                f"GPU {gpu} has live processes of several tasks: {', '.join(sorted(owners))}"
            )
    return {
        "ok": not problems,
        "problems": problems,
        "checked": {
            "running": len(engine.running),
            "queued": len(engine.queued),
            "lingering": len(engine.lingering),
            "processes": len(processes),
            "gpus": len(engine.gpus),
            "pending_writes": len(pending) + len(unsaved_pids),
        },
    }
