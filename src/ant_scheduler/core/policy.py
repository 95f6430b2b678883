"""The scheduling policy: given the queue and the GPU pool, which queued tasks start now, on which
GPUs, and a human-readable reason for every task that keeps waiting. Pure and deterministic.

Backfill never starves the oldest blocked GPU task B: B reserves its target set, the lowest-numbered
n_gpus GPUs it could use (enabled, working, not busy outside ANT; busy-outside ones by index if too
few). Free GPUs of that set are kept for B and later tasks may only take free GPUs outside it, so
the set only drains and B starts once it has. Only B holds a reservation. Without runtime
estimates, reserving *all* free GPUs instead would make backfill the same as fifo.
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
    allocated_to: tuple[str, ...] = ()  # ANT task ids holding it (normally 0 or 1)
    external: str | None = None  # busy outside ANT (ADGS): who, e.g. "pid 4242 alice python x.py"
    unavailable: str | None = None  # cannot be used at all (e.g. an NVML error): why

    @property
    def usable(self) -> bool:
        """Could be given to a task at some point: allocations and outside use are temporary."""
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
    starts: tuple[Start, ...]  # in queue order
    pending: Mapping[str, str]  # task_id -> why it does not start now, for every other task


def order_queue(queue: Iterable[QueuedTask]) -> list[QueuedTask]:
    """Higher priority first, then lower queue_seq; task_id only makes ties deterministic."""
    # Promote-to-top needs nothing here: the engine gives the promoted task the top priority and
    # the lowest queue_seq, so this order already puts it first.
    return sorted(queue, key=lambda t: (-t.priority, t.queue_seq, t.task_id))


def plan(
    queue: Sequence[QueuedTask],
    gpus: Sequence[GpuView],
    *,
    policy: Policy = "fifo",
    running_cpu_tasks: int = 0,
    max_cpu_tasks: int | None = None,
) -> Plan:
    """Decide which queued tasks start now and why each of the others waits."""
    pool = sorted(gpus, key=lambda g: g.index)
    n_usable = sum(1 for g in pool if g.usable)
    starts: list[Start] = []
    pending: dict[str, str] = {}
    cpu_running = running_cpu_tasks
    taken: dict[int, str] = {}  # GPU index -> task this plan starts on it
    kept: dict[int, str] = {}  # backfill: free GPU index -> the oldest blocked task it is kept for
    blocker: str | None = None  # the oldest GPU task that could run some day but does not fit now

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
            # Waiting on it would only stall the queue until someone re-enables GPUs.
            pending[task.task_id] = _never_fits_reason(task.n_gpus, pool)
            continue
        if blocker is not None and policy == "fifo":
            pending[task.task_id] = f"waiting behind {blocker} (fifo)"
            continue
        open_ids = [
            g.index for g in pool if g.free and g.index not in taken and g.index not in kept
        ]
        if len(open_ids) >= task.n_gpus:
            chosen = tuple(open_ids[: task.n_gpus])
            starts.append(Start(task.task_id, chosen))
            taken.update(dict.fromkeys(chosen, task.task_id))
            continue
        reason = _waiting_reason(task.n_gpus, pool, open_ids, taken, kept)
        if blocker is None:
            blocker = task.task_id
            if policy == "backfill":
                target = _target_set(task.n_gpus, pool)
                kept = {i: task.task_id for i in target if i in open_ids}
                reason += f"; {_gpu_label(target)} reserved for it"
        pending[task.task_id] = reason
    return Plan(tuple(starts), pending)


def _target_set(n_gpus: int, pool: Sequence[GpuView]) -> list[int]:
    """The GPUs the oldest blocked task will run on under backfill (pool is sorted by index)."""
    clean = [g.index for g in pool if g.usable and g.external is None]
    outside = [g.index for g in pool if g.usable and g.external is not None]
    return sorted(clean[:n_gpus] + outside[: max(0, n_gpus - len(clean))])


def _waiting_reason(
    n_gpus: int,
    pool: Sequence[GpuView],
    open_ids: Sequence[int],
    taken: Mapping[int, str],
    kept: Mapping[int, str],
) -> str:
    """e.g. 'needs 3 GPUs; 2 free (1, 3); GPU 0 disabled; GPU 2 busy outside ANT (pid 42 ...)'."""
    parts = [f"needs {_count(n_gpus)}"]
    parts.append(f"{len(open_ids)} free ({_ids(open_ids)})" if open_ids else "none free")
    not_open = [(g.index, _why_not_open(g, taken, kept)) for g in pool if g.index not in open_ids]
    return "; ".join([*parts, *_grouped(not_open)])


def _why_not_open(gpu: GpuView, taken: Mapping[int, str], kept: Mapping[int, str]) -> str:
    # The most lasting cause first: a disabled GPU stays unusable after its task ends.
    if not gpu.enabled:
        return "disabled"
    if gpu.unavailable is not None:
        return f"unavailable ({gpu.unavailable})"
    if gpu.index in kept:
        return f"kept for older task {kept[gpu.index]}"
    if gpu.index in taken:
        return f"in use by {taken[gpu.index]}"
    if gpu.allocated_to:
        return f"in use by {', '.join(gpu.allocated_to)}"
    return f"busy outside ANT ({gpu.external})"


def _never_fits_reason(n_gpus: int, pool: Sequence[GpuView]) -> str:
    """e.g. 'needs 6 GPUs but only 4 are enabled (GPU 2 disabled)'."""
    needs = f"needs {_count(n_gpus)} but"
    off = [(g.index, _why_not_open(g, {}, {})) for g in pool if not g.usable]
    if not off:
        return f"{needs} ANT has only {len(pool)}" if pool else f"{needs} ANT has no GPUs"
    usable = len(pool) - len(off)
    word = "usable" if any(g.enabled and not g.usable for g in pool) else "enabled"
    if usable == 0:
        head = f"no GPU is {word}"
    else:
        head = f"only {usable} {'is' if usable == 1 else 'are'} {word}"
    return f"{needs} {head} ({'; '.join(_grouped(off))})"


def _grouped(causes: Iterable[tuple[int, str]]) -> list[str]:
    """[(0, 'in use by a'), (1, 'in use by a')] -> ['GPUs 0, 1 in use by a'], by lowest index."""
    by_cause: dict[str, list[int]] = {}
    for index, cause in causes:
        by_cause.setdefault(cause, []).append(index)
    return [f"{_gpu_label(ids)} {cause}" for cause, ids in by_cause.items()]


def _gpu_label(ids: Sequence[int]) -> str:
    return f"GPU {ids[0]}" if len(ids) == 1 else f"GPUs {_ids(ids)}"


def _count(n_gpus: int) -> str:
    return "1 GPU" if n_gpus == 1 else f"{n_gpus} GPUs"


def _ids(ids: Iterable[int]) -> str:
    return ", ".join(str(i) for i in ids)
