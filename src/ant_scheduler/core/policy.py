"""The scheduling policy: (ordered queue, GPU pool) -> which tasks start now, on which GPUs.

Pure and deterministic. Order is priority (higher first), then queue_seq (promote-to-top is the
engine giving a task the top priority and the lowest queue_seq, so nothing special is needed here).
0-GPU tasks never wait behind GPU tasks. A task needing more GPUs than can ever be used waits with
a reason and blocks nobody.

- fifo: the first GPU task that does not fit blocks every later GPU task.
- backfill: later GPU tasks may start, but the oldest blocked task B holds a reservation on its
  target set: the lowest-numbered n GPUs usable for it. Free GPUs in that set are kept for B; later
  tasks use free GPUs outside it. (Without runtime estimates, reserving *all* free GPUs would make
  backfill identical to fifo.) Once every GPU of the target set frees up, B starts, so it cannot
  starve.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Policy = Literal["fifo", "backfill"]


@dataclass(frozen=True)
class GpuView:
    index: int
    enabled: bool = True
    allocated_to: tuple[str, ...] = ()  # ANT task ids holding it
    external: str | None = None  # who uses it outside ANT (ADGS), e.g. "pid 42 alice python x.py"
    unavailable: str | None = None  # why it cannot be used at all (e.g. an NVML error)

    @property
    def usable(self) -> bool:
        """Could ever be given to a task (enabled and working)."""
        return self.enabled and self.unavailable is None

    @property
    def free(self) -> bool:
        return self.usable and not self.allocated_to and self.external is None


@dataclass(frozen=True)
class QueuedTask:
    task_id: str
    n_gpus: int
    priority: int = 0
    queue_seq: int = 0


@dataclass(frozen=True)
class Start:
    task_id: str
    gpu_ids: tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    starts: tuple[Start, ...]
    pending: Mapping[str, str]  # task_id -> why it does not start now


def order_queue(queue: Iterable[QueuedTask]) -> list[QueuedTask]:
    return sorted(queue, key=lambda t: (-t.priority, t.queue_seq, t.task_id))


def _plural(n: int) -> str:
    return f"{n} GPU" if n == 1 else f"{n} GPUs"


def _ids(indices: Iterable[int]) -> str:
    return ", ".join(str(i) for i in indices)


def _blocked_reason(
    task: QueuedTask,
    gpus: Sequence[GpuView],
    free: Sequence[int],
    kept: Mapping[int, str],
    assigned: Mapping[int, str],
) -> str:
    """e.g. 'needs 4 GPUs; 2 free (1, 3); GPU 2 busy outside ANT (pid 7); GPU 0 disabled'."""
    parts = [f"needs {_plural(task.n_gpus)}"]
    parts.append(f"{len(free)} free ({_ids(free)})" if free else "none free")
    for gpu in gpus:
        if gpu.index in kept:
            parts.append(f"GPU {gpu.index} kept for older task {kept[gpu.index]}")
        elif gpu.index in assigned:
            parts.append(f"GPU {gpu.index} given to {assigned[gpu.index]}")
        elif not gpu.enabled:
            parts.append(f"GPU {gpu.index} disabled")
        elif gpu.unavailable is not None:
            parts.append(f"GPU {gpu.index} unavailable ({gpu.unavailable})")
        elif gpu.allocated_to:
            parts.append(f"GPU {gpu.index} in use by {', '.join(gpu.allocated_to)}")
        elif gpu.external is not None:
            parts.append(f"GPU {gpu.index} busy outside ANT ({gpu.external})")
    return "; ".join(parts)


def _impossible_reason(task: QueuedTask, gpus: Sequence[GpuView]) -> str:
    usable = sum(1 for g in gpus if g.usable)
    why = [f"GPU {g.index} disabled" for g in gpus if not g.enabled]
    why += [
        f"GPU {g.index} unavailable ({g.unavailable})" for g in gpus if g.enabled and g.unavailable
    ]
    total = len(gpus)
    if usable == total:
        text = f"needs {_plural(task.n_gpus)} but this machine has only {total}"
    else:
        text = f"needs {_plural(task.n_gpus)} but only {usable} of {total} can be used"
    return text + (f" ({'; '.join(why)})" if why else "")


def plan(
    queue: Sequence[QueuedTask],
    gpus: Sequence[GpuView],
    *,
    policy: Policy = "fifo",
    running_cpu_tasks: int = 0,
    max_cpu_tasks: int | None = None,
) -> Plan:
    gpus = sorted(gpus, key=lambda g: g.index)
    free = [g.index for g in gpus if g.free]
    n_usable = sum(1 for g in gpus if g.usable)
    starts: list[Start] = []
    pending: dict[str, str] = {}
    cpu_running = running_cpu_tasks
    blocker: QueuedTask | None = None  # the oldest GPU task that does not fit
    kept: dict[int, str] = {}  # backfill: GPU index -> id of the task it is kept for
    assigned: dict[int, str] = {}  # GPU index -> task starting on it in this plan

    for task in order_queue(queue):
        if task.n_gpus == 0:
            if max_cpu_tasks is None or cpu_running < max_cpu_tasks:
                starts.append(Start(task.task_id, ()))
                cpu_running += 1
            else:
                pending[task.task_id] = (
                    f"CPU task limit reached ({cpu_running} of {max_cpu_tasks} running)"
                )
            continue
        if task.n_gpus > n_usable:
            pending[task.task_id] = _impossible_reason(task, gpus)
            continue
        if blocker is not None and policy == "fifo":
            pending[task.task_id] = f"waiting behind {blocker.task_id} (fifo)"
            continue
        available = [i for i in free if i not in kept]
        if len(available) >= task.n_gpus:
            chosen = tuple(available[: task.n_gpus])
            starts.append(Start(task.task_id, chosen))
            free = [i for i in free if i not in chosen]
            assigned.update({i: task.task_id for i in chosen})
            continue
        if blocker is None:
            blocker = task
            if policy == "backfill":
                target = _target_set(task, gpus)
                kept = {i: task.task_id for i in target if i in free}
            pending[task.task_id] = _blocked_reason(task, gpus, available, {}, assigned)
        else:
            pending[task.task_id] = _blocked_reason(task, gpus, available, kept, assigned)
    return Plan(tuple(starts), pending)


def _target_set(task: QueuedTask, gpus: Sequence[GpuView]) -> list[int]:
    """The GPUs reserved for the oldest blocked task under backfill."""
    clean = [g.index for g in gpus if g.usable and g.external is None]
    if len(clean) >= task.n_gpus:
        return clean[: task.n_gpus]
    busy_outside = [g.index for g in gpus if g.usable and g.external is not None]
    return sorted(clean + busy_outside[: task.n_gpus - len(clean)])
