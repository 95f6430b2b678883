"""The queued tasks in start order, kept sorted as they come and go so that nothing has to sort
the whole queue again: a scheduling pass reads only the front of it, a position is one lookup.

Start order is higher priority first, then lower queue_seq, then task_id (`start_key`). Besides
the whole order, the queue keeps one ordered bucket per shape, (GPUs per node, nodes): (0, 1) holds
single CPU tasks, (2, 1) 2-GPU tasks, (4, 2) gangs of 2 nodes x 4 GPUs. The policy merges just the
buckets that could still start and drops a bucket as soon as its shape no longer fits what is open
(see `policy.plan`). A task declaring GPU memory (`gpu_mem`: it shares one GPU) goes into a bucket
of its own per declared size: (1, 1, gpu_mem); whole-GPU tasks are (n_gpus, n_nodes, 0).

It also keeps one bucket per owner and shape (`tasks_of`): fair share and per-user GPU limits
pick among the heads of users' queues (each in start order) instead of walking the whole queue.

Add, remove and position cost O(log n); building from n tasks sorts once, O(n log n). A move
(`plan_move`, then `reorder`) changes the keys of the moved task, and rarely of a few neighbours
(core/order_keys.py): O(log n) too.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from sortedcontainers import SortedList

from ant_scheduler.core import order_keys

if TYPE_CHECKING:
    from ant_scheduler.core.policy import QueuedTask

StartKey = tuple[int, int, str]  # (-priority, queue_seq, task_id)
Shape = tuple[int, int]  # (n_gpus per node, n_nodes)
# A bucket: the shape and the GPU memory a task declares (0: whole GPUs). Memory tasks (one GPU,
# shared) of each declared size have a bucket of their own, so a pass drops a size that no longer
# fits as it drops a shape.
Bucket = tuple[int, int, int]
Group = tuple[str, Bucket]  # (owner, bucket)
_T = TypeVar("_T")


class _Sorted(Protocol[_T]):
    """The part of sortedcontainers.SortedList used here (the package ships no type hints)."""

    def add(self, value: _T, /) -> None: ...
    def remove(self, value: _T, /) -> None: ...
    def index(self, value: _T, /) -> int: ...
    def __getitem__(self, index: int, /) -> _T: ...
    def __iter__(self) -> Iterator[_T]: ...
    def __len__(self) -> int: ...


def shape_of(task: QueuedTask) -> Shape:
    return (task.n_gpus, task.n_nodes)


def bucket_of(task: QueuedTask) -> Bucket:
    return (task.n_gpus, task.n_nodes, task.gpu_mem)


def group_of(task: QueuedTask) -> Group:
    return (task.owner, bucket_of(task))


def start_key(task: QueuedTask) -> StartKey:
    """Sorts tasks in start order: higher priority, then lower queue_seq, then task_id."""
    return (-task.priority, task.queue_seq, task.task_id)


class TaskQueue:
    """Queued tasks by task_id, iterated in start order. Task ids are unique.

    Do not change the queue while iterating over it (or over `tasks_needing`), as with a dict.
    """

    def __init__(self, tasks: Iterable[QueuedTask] = ()) -> None:
        self._tasks: dict[str, QueuedTask] = {}
        for task in tasks:
            _check(task)
            if task.task_id in self._tasks:
                raise ValueError(f"task {task.task_id!r} is queued twice")
            self._tasks[task.task_id] = task
        self._build()

    def _build(self) -> None:
        """The order, the buckets and the seqs of `_tasks`, each sorted once."""
        groups: dict[Bucket, list[StartKey]] = {}
        owned: dict[Group, list[StartKey]] = {}
        for task in self._tasks.values():
            key = start_key(task)
            groups.setdefault(bucket_of(task), []).append(key)
            owned.setdefault(group_of(task), []).append(key)
        self._order: _Sorted[StartKey] = SortedList(k for g in groups.values() for k in g)
        self._buckets: dict[Bucket, _Sorted[StartKey]] = {
            n: SortedList(g) for n, g in groups.items()
        }
        self._owned: dict[Group, _Sorted[StartKey]] = {g: SortedList(k) for g, k in owned.items()}
        self._seqs: _Sorted[int] = SortedList(t.queue_seq for t in self._tasks.values())

    # ------------------------------------------------------------------ changes

    def add(self, task: QueuedTask) -> None:
        """Queue a task; ValueError if its task_id is already queued."""
        _check(task)
        if task.task_id in self._tasks:
            raise ValueError(f"task {task.task_id!r} is already queued")
        key = start_key(task)
        self._tasks[task.task_id] = task
        self._order.add(key)
        bucket = self._buckets.get(bucket_of(task))
        if bucket is None:
            bucket = self._buckets[bucket_of(task)] = SortedList()
        bucket.add(key)
        mine = self._owned.get(group_of(task))
        if mine is None:
            mine = self._owned[group_of(task)] = SortedList()
        mine.add(key)
        self._seqs.add(task.queue_seq)

    def merge(self, batch: QueueBatch) -> None:
        """Queue every task of a prepared batch at once (a large submission).

        The Python-level work per task was done while the batch was filled; this is sorting and
        dict merging in C, so the caller's event loop is not held for long. ValueError (and
        nothing queued) if an id is already queued.
        """
        if not self._tasks.keys().isdisjoint(batch.tasks):
            taken = min(self._tasks.keys() & batch.tasks.keys())
            raise ValueError(f"task {taken!r} is already queued")
        self._tasks.update(batch.tasks)
        self._order = _merged(self._order, batch.keys)
        for shape, keys in batch.by_shape.items():
            self._buckets[shape] = _merged(self._buckets.get(shape), keys)
        for group, keys in batch.by_group.items():
            self._owned[group] = _merged(self._owned.get(group), keys)
        self._seqs = _merged(self._seqs, batch.seqs)

    def remove(self, task_id: str) -> QueuedTask:
        """Take a task out of the queue and return it; KeyError if it is not queued."""
        task = self._tasks.pop(task_id)
        key = start_key(task)
        self._order.remove(key)
        bucket = self._buckets[bucket_of(task)]
        bucket.remove(key)
        if not bucket:
            del self._buckets[bucket_of(task)]
        mine = self._owned[group_of(task)]
        mine.remove(key)
        if not mine:
            del self._owned[group_of(task)]
        self._seqs.remove(task.queue_seq)
        return task

    def remove_many(self, task_ids: Iterable[str]) -> list[QueuedTask]:
        """Take out those of these tasks that are queued (a paused tag's, say) and return them.
        Many at once rebuild the order from the tasks left, one sort in C, instead of removing
        each: 100,000 removals one by one would hold the caller's loop for seconds."""
        gone = [self._tasks[i] for i in dict.fromkeys(task_ids) if i in self._tasks]
        if len(gone) * 8 < len(self._tasks):
            for task in gone:
                self.remove(task.task_id)
            return gone
        for task in gone:
            del self._tasks[task.task_id]
        self._build()
        return gone

    def promote(self, task_id: str) -> QueuedTask:
        """Move a task to the front: the top priority and the lowest queue_seq minus one.

        Returns the task as it is queued now, so the caller can copy priority and queue_seq.
        """
        if task_id not in self._tasks:
            raise KeyError(task_id)
        priority, seq = self.max_priority(), self.min_seq() - 1
        task = dataclasses.replace(self.remove(task_id), priority=priority, queue_seq=seq)
        self.add(task)
        return task

    def plan_move(
        self,
        task_id: str,
        *,
        before: str | None = None,
        after: str | None = None,
        to: Literal["top", "bottom"] | None = None,
    ) -> list[QueuedTask]:
        """Where a move puts a task: the entries whose priority or queue_seq change, as they will
        be (the moved task and, rarely, a few neighbours spread out), in start order; [] if the
        task is there already. Changes nothing: `reorder` applies it.

        Exactly one of before, after, to. The task adopts the priority of the place it goes to
        (its neighbour's; the highest for the top, the lowest for the bottom), so the order
        shown is the order of starts. KeyError if a task is not queued; ValueError if it is
        moved relative to itself.
        """
        if sum(x is not None for x in (before, after, to)) != 1:
            raise ValueError("say one of before, after, to")
        moved = self._tasks[task_id]
        other = before if before is not None else after
        if other == task_id:
            raise ValueError("a task cannot move relative to itself")
        keys = self._order
        here = keys.index(start_key(moved))
        size = len(keys) - 1  # the order without the moved task

        def at(i: int) -> StartKey:
            return keys[i if i < here else i + 1]

        if other is not None:
            neighbour = self._tasks[other]
            i = keys.index(start_key(neighbour))
            slot = (i if i < here else i - 1) + (after is not None)
            priority = neighbour.priority
        elif to == "top":
            slot, priority = 0, -keys[0][0]
        else:
            slot, priority = size, -keys[-1][0]
        if priority == moved.priority and slot == here:
            return []

        def same(i: int) -> bool:
            return 0 <= i < size and -at(i)[0] == priority

        seq = order_keys.between(
            at(slot - 1)[1] if same(slot - 1) else None, at(slot)[1] if same(slot) else None
        )
        if seq is not None:
            return [dataclasses.replace(moved, priority=priority, queue_seq=seq)]
        # No room between the neighbours: spread out the moved task and a few around it.
        width = 1
        while True:
            left = [i for i in range(slot - 1, slot - 1 - width, -1) if same(i)][::-1]
            right = [i for i in range(slot, slot + width) if same(i)]
            low, high = (left[0] if left else slot) - 1, (right[-1] if right else slot - 1) + 1
            seqs = order_keys.spread(
                len(left) + len(right) + 1,
                at(low)[1] if same(low) else None,
                at(high)[1] if same(high) else None,
            )
            if seqs is not None:
                break
            width *= 2
        entries = [self._tasks[at(i)[2]] for i in left]
        entries.append(dataclasses.replace(moved, priority=priority))
        entries += [self._tasks[at(i)[2]] for i in right]
        planned = [dataclasses.replace(e, queue_seq=s) for e, s in zip(entries, seqs, strict=True)]
        return [e for e in planned if e != self._tasks[e.task_id]]

    def reorder(self, entries: Iterable[QueuedTask]) -> None:
        """Give queued tasks new priorities and queue_seqs (as `plan_move` planned them)."""
        for entry in entries:
            self.remove(entry.task_id)
            self.add(entry)

    # ------------------------------------------------------------------ reading

    def get(self, task_id: str) -> QueuedTask | None:
        return self._tasks.get(task_id)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[QueuedTask]:
        """All tasks in start order."""
        tasks = self._tasks
        return (tasks[key[2]] for key in self._order)

    def __repr__(self) -> str:
        return f"<TaskQueue of {len(self)}>"

    def position(self, task_id: str) -> int:
        """1 for the task that starts first; KeyError if the task is not queued. O(log n)."""
        return self._order.index(start_key(self._tasks[task_id])) + 1

    def first(self) -> QueuedTask | None:
        """The task that starts first, if any."""
        return self._tasks[self._order[0][2]] if self._tasks else None

    def max_priority(self) -> int:
        """The highest priority in the queue; ValueError if it is empty."""
        if not self._tasks:
            raise ValueError("the queue is empty")
        return -self._order[0][0]

    def min_seq(self) -> int:
        """The lowest queue_seq in the queue (of any priority); ValueError if it is empty."""
        if not self._tasks:
            raise ValueError("the queue is empty")
        return self._seqs[0]

    # ------------------------------------------------------------------ for the policy

    def gpu_counts(self) -> list[int]:
        """The distinct n_gpus of queued tasks, 0 for CPU tasks, ascending."""
        return sorted({n_gpus for n_gpus, _, _ in self._buckets})

    def shapes(self) -> list[Shape]:
        """The distinct (n_gpus, n_nodes) of queued tasks, ascending."""
        return sorted({(n_gpus, n_nodes) for n_gpus, n_nodes, _ in self._buckets})

    def buckets(self) -> list[Bucket]:
        """The distinct (n_gpus, n_nodes, gpu_mem) of queued tasks, ascending."""
        return sorted(self._buckets)

    def tasks_needing(
        self, n_gpus: int, n_nodes: int = 1, gpu_mem: int = 0
    ) -> Iterator[QueuedTask]:
        """The tasks that need exactly n_gpus GPUs (0: CPU tasks) on each of n_nodes nodes (and
        declare exactly gpu_mem bytes of one GPU, 0: whole GPUs), in start order, lazily."""
        bucket = self._buckets.get((n_gpus, n_nodes, gpu_mem))
        if bucket is None:
            return iter(())
        tasks = self._tasks
        return (tasks[key[2]] for key in bucket)

    def groups(self) -> list[Group]:
        """The distinct (owner, (n_gpus, n_nodes, gpu_mem)) of queued tasks, sorted."""
        return sorted(self._owned)

    def owners(self) -> set[str]:
        return {owner for owner, _ in self._owned}

    def tasks_of(
        self, owner: str, n_gpus: int, n_nodes: int = 1, gpu_mem: int = 0
    ) -> Iterator[QueuedTask]:
        """The owner's tasks of this bucket, in start order, lazily."""
        bucket = self._owned.get((owner, (n_gpus, n_nodes, gpu_mem)))
        if bucket is None:
            return iter(())
        tasks = self._tasks
        return (tasks[key[2]] for key in bucket)


class QueueBatch:
    """Tasks checked and keyed in pieces (between the caller's other work), for TaskQueue.merge."""

    def __init__(self) -> None:
        self.tasks: dict[str, QueuedTask] = {}
        self.keys: list[StartKey] = []
        self.by_shape: dict[Bucket, list[StartKey]] = {}
        self.by_group: dict[Group, list[StartKey]] = {}
        self.seqs: list[int] = []

    def add(self, tasks: Iterable[QueuedTask]) -> None:
        """ValueError if a task is invalid or already in the batch (the batch is unchanged)."""
        new = list(tasks)
        ids = {t.task_id for t in new}
        if len(ids) != len(new) or not ids.isdisjoint(self.tasks):
            raise ValueError("a task id is in the batch twice")
        for task in new:
            _check(task)
        for task in new:
            key = start_key(task)
            self.tasks[task.task_id] = task
            self.keys.append(key)
            self.by_shape.setdefault(bucket_of(task), []).append(key)
            self.by_group.setdefault(group_of(task), []).append(key)
            self.seqs.append(task.queue_seq)

    def __len__(self) -> int:
        return len(self.tasks)


def _merged(existing: _Sorted[_T] | None, new: list[_T]) -> _Sorted[_T]:
    """existing + new as one sorted list, built in C (a sort of two sorted runs is linear)."""
    if existing is not None and len(new) < 64:  # a few insertions are cheaper than a rebuild
        for value in new:
            existing.add(value)
        return existing
    merged: _Sorted[_T] = SortedList(itertools.chain(existing or (), new))
    return merged


def _check(task: QueuedTask) -> None:
    if task.n_gpus < 0:
        raise ValueError(f"task {task.task_id!r} needs {task.n_gpus} GPUs")
    if task.n_nodes < 1:
        raise ValueError(f"task {task.task_id!r} needs {task.n_nodes} nodes")
    if task.gpu_mem < 0 or (task.gpu_mem and (task.n_gpus, task.n_nodes) != (1, 1)):
        raise ValueError(f"task {task.task_id!r} declares GPU memory but not one GPU on one node")
