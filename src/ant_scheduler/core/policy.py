"""The scheduling policy: given the queue and the GPU pool, which queued tasks start now, on which
GPUs, and a human-readable reason for every task that keeps waiting. Pure and deterministic.

Backfill never starves the oldest blocked GPU task B: B reserves its target set, the lowest-numbered
n_gpus GPUs it could use (enabled, working, not busy outside ANT; busy-outside ones by index if too
few). Free GPUs of that set are kept for B and later tasks may only take free GPUs outside it, so
the set only drains and B starts once it has. Only B holds a reservation. Without runtime
estimates, reserving *all* free GPUs instead would make backfill the same as fifo.

Cost: a pass reads the queue (a `TaskQueue`) from the front, one ordered bucket per GPU count, and
stops as soon as nothing more can start, so it looks at the tasks it starts plus a few more, however
long the queue. Why a task waits is worked out only when asked (`Plan.reason`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from ant_scheduler.core.queue import StartKey, TaskQueue, start_key

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


NOT_PLANNED = "waiting for the next scheduling pass"  # a task this plan did not cover


@dataclass(frozen=True)
class _PassEnd:
    """What a pass leaves behind: enough to say in O(number of GPUs) why any task waits."""

    pool: tuple[GpuView, ...]  # sorted by index
    n_usable: int
    policy: Policy
    open_ids: tuple[int, ...]  # free GPUs nobody took, minus those kept for the blocker
    taken: Mapping[int, str]  # GPU index -> task this plan starts on it
    kept: Mapping[int, str]  # backfill: free GPU index -> the blocker it is kept for
    blocker: QueuedTask | None  # the oldest GPU task that could run some day but does not fit now
    target: tuple[int, ...]  # backfill: the blocker's target set
    cpu_running: int  # CPU tasks running once this plan's CPU starts are done
    max_cpu_tasks: int | None


class Plan:
    """The outcome of one pass: `starts`, and `reason(task)` for any task that keeps waiting."""

    def __init__(
        self, starts: tuple[Start, ...], examined: int, end: _PassEnd, queue: TaskQueue
    ) -> None:
        self.starts = starts  # in queue order
        self.examined = examined  # queued tasks the pass looked at (cost, for tests and metrics)
        self._end = end
        self._queue = queue
        self._started = frozenset(s.task_id for s in starts)
        self._reasons: dict[int, str] = {}  # n_gpus -> reason, see _by_gpus
        self._blocker_reason: str | None = None

    def __repr__(self) -> str:
        return f"Plan(starts={self.starts!r}, examined={self.examined})"

    def reason(self, task: QueuedTask) -> str | None:
        """Why the task does not start in this plan, None if it does. O(number of GPUs).

        Described from the state at the end of the pass: a GPU that a later task of the same pass
        starts on shows as in use by it. Works for any task of the queue, looked at or not; for a
        task the pass could not have covered (queued or reprioritized since), says it waits for the
        next pass.
        """
        if task.task_id in self._started:
            return None
        end = self._end
        if task.n_gpus == 0:
            if end.max_cpu_tasks is not None and end.cpu_running >= end.max_cpu_tasks:
                return f"CPU task limit reached ({end.cpu_running} of {end.max_cpu_tasks} running)"
            return NOT_PLANNED
        if task.n_gpus > end.n_usable:
            # Waiting on it would only stall the queue until someone re-enables GPUs.
            return self._by_gpus(task.n_gpus)
        blocker = end.blocker
        if blocker is not None:
            if task.task_id == blocker.task_id:
                return self._reason_of_blocker(blocker)
            if start_key(task) < start_key(blocker):
                return NOT_PLANNED  # everything ahead of the blocker started or never fits
            if end.policy == "fifo":
                return f"waiting behind {blocker.task_id} (fifo)"
        if task.n_gpus <= len(end.open_ids):
            return NOT_PLANNED
        return self._by_gpus(task.n_gpus)

    def _by_gpus(self, n_gpus: int) -> str:
        """The reason of a waiting GPU task other than the blocker: it depends only on n_gpus."""
        reason = self._reasons.get(n_gpus)
        if reason is None:
            end = self._end
            if n_gpus > end.n_usable:
                reason = _never_fits_reason(n_gpus, end.pool)
            else:
                reason = _waiting_reason(n_gpus, end.pool, end.open_ids, end.taken, end.kept)
            self._reasons[n_gpus] = reason
        return reason

    def _reason_of_blocker(self, blocker: QueuedTask) -> str:
        if self._blocker_reason is None:
            end = self._end
            # The GPUs kept for it are free as far as the blocker itself is concerned.
            open_ids = sorted([*end.open_ids, *end.kept])
            reason = _waiting_reason(blocker.n_gpus, end.pool, open_ids, end.taken, {})
            if end.policy == "backfill":
                reason += f"; {_gpu_label(end.target)} reserved for it"
            self._blocker_reason = reason
        return self._blocker_reason

    @cached_property
    def pending(self) -> Mapping[str, str]:
        """task_id -> reason, for every task of the queue that does not start, in queue order.

        O(queue length), computed on first use from the queue as it is then: read it before
        changing the queue (taking out the started tasks does not matter).
        """
        out: dict[str, str] = {}
        for task in self._queue:
            reason = self.reason(task)
            if reason is not None:
                out[task.task_id] = reason
        return out


def order_queue(queue: Iterable[QueuedTask]) -> list[QueuedTask]:
    """Higher priority first, then lower queue_seq; task_id only makes ties deterministic."""
    # Promote-to-top needs nothing here: the engine gives the promoted task the top priority and
    # the lowest queue_seq, so this order already puts it first.
    return sorted(queue, key=start_key)


_Head = tuple[StartKey, int, QueuedTask, Iterator[QueuedTask]]  # a bucket's next task, the rest


def plan(
    queue: TaskQueue | Iterable[QueuedTask],
    gpus: Sequence[GpuView],
    *,
    policy: Policy = "fifo",
    running_cpu_tasks: int = 0,
    max_cpu_tasks: int | None = None,
) -> Plan:
    """Decide which queued tasks start now; `Plan.reason` says why each of the others waits.

    Takes the queue as a TaskQueue (the plan looks at a few tasks beyond those it starts) or as
    any collection of tasks with unique ids (sorted into a TaskQueue first, O(n log n)).
    """
    tasks = queue if isinstance(queue, TaskQueue) else TaskQueue(queue)
    pool = tuple(sorted(gpus, key=lambda g: g.index))
    n_usable = sum(1 for g in pool if g.usable)
    starts: list[tuple[StartKey, Start]] = []
    examined = 0

    # CPU tasks never wait on GPU tasks: start them in queue order up to the limit.
    cpu_running = running_cpu_tasks
    if max_cpu_tasks is None or cpu_running < max_cpu_tasks:
        for task in tasks.tasks_needing(0):
            examined += 1
            starts.append((start_key(task), Start(task.task_id, ())))
            cpu_running += 1
            if max_cpu_tasks is not None and cpu_running >= max_cpu_tasks:
                break

    # GPU tasks, in queue order, by merging the buckets of tasks that could run some day (tasks
    # needing more GPUs than are usable are skipped: they would only stall the queue).
    heads: list[_Head] = []
    for n_gpus in tasks.gpu_counts():
        if 0 < n_gpus <= n_usable:
            rest = tasks.tasks_needing(n_gpus)
            first = next(rest)  # a queue keeps no empty bucket
            heads.append((start_key(first), n_gpus, first, rest))
    heapq.heapify(heads)
    open_ids = [g.index for g in pool if g.free]  # lowest first
    taken: dict[int, str] = {}
    kept: dict[int, str] = {}
    blocker: QueuedTask | None = None
    target: tuple[int, ...] = ()
    while heads and (blocker is None or open_ids):
        key, n_gpus, task, rest = heads[0]
        examined += 1
        if n_gpus <= len(open_ids):
            chosen = tuple(open_ids[:n_gpus])
            del open_ids[:n_gpus]
            starts.append((key, Start(task.task_id, chosen)))
            taken.update(dict.fromkeys(chosen, task.task_id))
            following = next(rest, None)
            if following is None:
                heapq.heappop(heads)
            else:
                heapq.heapreplace(heads, (start_key(following), n_gpus, following, rest))
            continue
        if blocker is None:
            blocker = task
            if policy == "fifo":
                break  # everything after it waits behind it
            target = tuple(_target_set(n_gpus, pool))
            kept = {i: task.task_id for i in target if i in open_ids}
            open_ids = [i for i in open_ids if i not in kept]
        # Open GPUs only get fewer during a pass: no task of this bucket can start any more.
        heapq.heappop(heads)

    starts.sort(key=lambda ks: ks[0])
    end = _PassEnd(
        pool=pool,
        n_usable=n_usable,
        policy=policy,
        open_ids=tuple(open_ids),
        taken=taken,
        kept=kept,
        blocker=blocker,
        target=target,
        cpu_running=cpu_running,
        max_cpu_tasks=max_cpu_tasks,
    )
    return Plan(tuple(s for _, s in starts), examined, end, tasks)


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
    is_open = set(open_ids)
    not_open = [(g.index, _why_not_open(g, taken, kept)) for g in pool if g.index not in is_open]
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
