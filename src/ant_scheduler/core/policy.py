"""The scheduling policy: given the queue and the GPU pool, which queued tasks start now, on which
nodes and GPUs, and a human-readable reason for every task that keeps waiting. Pure and
deterministic.

Nodes. Every GPU is on a node ("" = this machine: the local executor has that one node only, and
then everything here reads exactly as it did before nodes existed). A task needs `n_gpus` GPUs on
each of `n_nodes` distinct nodes, all at once or not at all: an n-GPU task (n_nodes=1) gets all
its GPUs from one node; a gang gets n_nodes nodes each with n_gpus free GPUs. Of the nodes that
can take a task, the *best fit* is chosen: the nodes with the fewest open GPUs that still have
enough (ties by name), so that small tasks fill nodes up and whole nodes stay free for big ones.
On a node the task gets its lowest-numbered open GPUs. A gang's ranks are its nodes in name order
(rank 0 first), and its GPU ids are listed rank by rank. A task needing no GPU (n_gpus=0) goes to
the alive node(s) running the fewest ANT tasks, ties by name. The alive nodes are `nodes` plus
every node with a usable GPU; the caller marks the GPUs of a node that left as unavailable.

Backfill never starves the oldest blocked GPU task B: B reserves its target set, n_gpus usable
GPUs on each of n_nodes nodes: the first nodes in name order with n_gpus usable GPUs not busy
outside ANT (then, if too few, those where it takes GPUs busy outside ANT as well), on each the
lowest-numbered such GPUs (busy-outside ones by index if too few). The rule looks only at what is
usable, not at who holds what, so the target stays put from pass to pass. Free GPUs of that set
are kept for B and later tasks may only take free GPUs outside it, so the set only drains and B
starts once it has (if not earlier, somewhere else). Only B holds a reservation. Without runtime
estimates, reserving *all* free GPUs instead would make backfill the same as fifo.

GPU memory (docs/scheduling.md). A task may declare GPU memory (`gpu_mem`, bytes) instead of
whole GPUs: it gets one GPU that it shares with other such tasks while their declared memory plus
`mem_reserve` fits the GPU's memory. Of the GPUs already shared it goes where it fits tightest
(the least memory left that is enough: shared GPUs fill up before another GPU is opened), ties by
index; if none, a free GPU with enough memory (best-fit node, then the GPU the topology rule
picks) becomes shared. Whole-GPU tasks never share: a GPU held by memory tasks is not free for
them, and a GPU held by a whole-GPU task takes no memory task. Under backfill the blocker's target
set takes no new memory task either (so it drains); a blocked memory task reserves one GPU, the
lowest-numbered usable one not busy outside ANT that is big enough.

Topology (core/topology.py). On a node whose GPUs carry link labels (NVLink island, PCIe switch,
CPU socket), a task gets the free set with the closest links rather than the lowest numbers; the
backfill target is chosen the same way among the usable GPUs. `Start.placement` says which set and
why. Without labels nothing reads differently.

Cost: a pass reads the queue (a `TaskQueue`) from the front, one ordered bucket per shape
(n_gpus, n_nodes), and stops as soon as nothing more can start, so it looks at the tasks it starts
plus a few more, however long the queue. Why a task waits is worked out only when asked
(`Plan.reason`).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from ant_scheduler.core.queue import Bucket, Shape, StartKey, TaskQueue, start_key
from ant_scheduler.core.sizes import format_size
from ant_scheduler.core.topology import best_set, explain

Policy = Literal["fifo", "backfill", "fairshare"]


@dataclass(frozen=True)
class GpuView:
    index: int  # ANT's global id of the GPU
    enabled: bool = True
    allocated_to: tuple[str, ...] = ()  # ANT task ids holding it (normally 0 or 1)
    external: str | None = None  # busy outside ANT (ADGS): who, e.g. "pid 4242 alice python x.py"
    unavailable: str | None = None  # cannot be used at all (e.g. an NVML error): why
    node: str = ""  # the node it is on; "" = this machine
    local_index: int | None = None  # its index on its node (None: the same as index)
    mem_total: int = 0  # bytes; 0: unknown (no memory task goes there)
    # The memory tasks holding it (a part of allocated_to), each with the bytes it declared.
    shared: tuple[tuple[str, int], ...] = ()
    nvlink: int | None = None  # link labels on its node (core/topology.py); None: unknown
    switch: int | None = None
    socket: int | None = None

    @property
    def shared_by(self) -> tuple[str, ...]:
        return tuple(task_id for task_id, _ in self.shared)

    @property
    def mem_declared(self) -> int:
        return sum(n for _, n in self.shared)

    @property
    def shareable(self) -> bool:
        """Could take a memory task now (if it has the room): usable, not busy outside ANT, its
        memory known, and held by memory tasks only (or by nobody)."""
        return (
            self.usable
            and self.external is None
            and self.mem_total > 0
            and len(self.allocated_to) == len(self.shared)
        )

    @property
    def usable(self) -> bool:
        """Could be given to a task at some point: allocations and outside use are temporary."""
        return self.enabled and self.unavailable is None

    @property
    def free(self) -> bool:
        return self.usable and not self.allocated_to and self.external is None

    @property
    def label(self) -> str:
        """How people name it: `node-b:1`, or the index on this machine."""
        local = self.index if self.local_index is None else self.local_index
        return f"{self.node}:{local}" if self.node else str(self.index)


@dataclass(frozen=True)
class QueuedTask:
    task_id: str
    n_gpus: int  # on each node
    priority: int = 0
    queue_seq: int = 0
    n_nodes: int = 1
    gpu_mem: int = 0  # bytes of one shared GPU it declares; 0: whole GPUs
    owner: str = ""  # the user it belongs to (fair share, per-user GPU limits)


@dataclass(frozen=True)
class Start:
    task_id: str
    gpu_ids: tuple[int, ...]  # rank by rank: n_gpus of each rank's node, lowest first
    nodes: tuple[str, ...] = ("",)  # one per rank, rank 0 first
    placement: str | None = (
        None  # which GPUs and why (a shared GPU, the links); None: nothing to say
    )


NOT_PLANNED = "waiting for the next scheduling pass"  # a task this plan did not cover


@dataclass(frozen=True)
class _PassEnd:
    """What a pass leaves behind: enough to say in O(number of GPUs) why any task waits."""

    pool: tuple[GpuView, ...]  # sorted by index
    named: bool  # some GPU or node has a name: reasons speak of nodes
    nodes: tuple[str, ...]  # the alive nodes, by name
    usable_by_node: Mapping[str, int]
    total_by_node: Mapping[str, int]
    n_usable: int
    policy: Policy
    open_ids: tuple[int, ...]  # free GPUs nobody took, minus those kept for the blocker
    open_by_node: Mapping[str, tuple[int, ...]]  # the same, by node
    taken: Mapping[int, str]  # GPU index -> task this plan starts on it
    kept: Mapping[int, str]  # backfill: free GPU index -> the blocker it is kept for
    blocker: QueuedTask | None  # the oldest GPU task that could run some day but does not fit now
    target: tuple[int, ...]  # backfill: the blocker's target set (rank by rank)
    cpu_running: int  # CPU tasks running once this plan's CPU starts are done
    max_cpu_tasks: int | None
    room: Mapping[int, int]  # shared GPU index -> memory left for more memory tasks (bytes)
    reserve: int  # bytes kept free on a shared GPU
    biggest: int  # the most memory one memory task could ever get (largest usable GPU - reserve)
    held: Mapping[str, int]  # owner -> GPUs its tasks hold once this plan's starts are done
    max_gpus: Mapping[str, int]  # owner -> the GPUs its tasks may hold at once


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
        self._reasons: dict[Shape, str] = {}  # (n_gpus, n_nodes) -> reason, see _by_shape
        self._mem_reasons: dict[int, str] = {}  # gpu_mem -> reason
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
        limit = end.max_gpus.get(task.owner)
        held = end.held.get(task.owner, 0)
        if limit is not None and task.n_gpus and held + task.n_gpus * task.n_nodes > limit:
            return (
                f"{task.owner} holds {held} of {limit} GPUs (max_gpus); this task needs "
                f"{task.n_gpus * task.n_nodes}: it waits for one of {task.owner}'s tasks to end"
            )
        if task.gpu_mem:
            return self._reason_of_memory_task(task)
        if task.n_gpus == 0:
            if task.n_nodes > len(end.nodes):
                return self._by_shape(0, task.n_nodes)
            if end.max_cpu_tasks is not None and end.cpu_running >= end.max_cpu_tasks:
                return f"CPU task limit reached ({end.cpu_running} of {end.max_cpu_tasks} running)"
            return NOT_PLANNED
        if not _could_fit(task.n_gpus, task.n_nodes, end.usable_by_node):
            # Waiting on it would only stall the queue until someone re-enables GPUs.
            return self._by_shape(task.n_gpus, task.n_nodes)
        blocker = end.blocker
        if blocker is not None:
            if task.task_id == blocker.task_id:
                return self._reason_of_blocker(blocker)
            if end.policy != "fairshare" and start_key(task) < start_key(blocker):
                return NOT_PLANNED  # everything ahead of the blocker started or never fits
            if end.policy == "fifo":
                return f"waiting behind {blocker.task_id} (fifo)"
        if _pick(end.open_by_node, task.n_gpus, task.n_nodes) is not None:
            return NOT_PLANNED
        return self._by_shape(task.n_gpus, task.n_nodes)

    def _reason_of_memory_task(self, task: QueuedTask) -> str:
        end = self._end
        if task.gpu_mem > end.biggest:
            return self._by_memory(task.gpu_mem)
        blocker = end.blocker
        if blocker is not None:
            if task.task_id == blocker.task_id:
                return self._reason_of_blocker(blocker)
            if end.policy != "fairshare" and start_key(task) < start_key(blocker):
                return NOT_PLANNED
            if end.policy == "fifo":
                return f"waiting behind {blocker.task_id} (fifo)"
        by_index = {g.index: g for g in end.pool}
        if _pick_memory(task.gpu_mem, end.room, end.open_by_node, by_index, end.reserve):
            return NOT_PLANNED
        return self._by_memory(task.gpu_mem)

    def _by_memory(self, gpu_mem: int) -> str:
        reason = self._mem_reasons.get(gpu_mem)
        if reason is None:
            end = self._end
            if gpu_mem > end.biggest:
                reason = _memory_never_fits(gpu_mem, end)
            else:
                reason = _memory_waiting(gpu_mem, end, end.room, end.open_by_node, end.kept)
            self._mem_reasons[gpu_mem] = reason
        return reason

    def _by_shape(self, n_gpus: int, n_nodes: int) -> str:
        """The reason of a waiting task other than the blocker: it depends only on its shape."""
        reason = self._reasons.get((n_gpus, n_nodes))
        if reason is None:
            end = self._end
            if n_gpus == 0:
                reason = _too_few_nodes(n_nodes, end.nodes)
            elif not _could_fit(n_gpus, n_nodes, end.usable_by_node):
                reason = _never_fits(n_gpus, n_nodes, end)
            elif not end.named:
                reason = _waiting_reason(n_gpus, end.pool, end.open_ids, end.taken, end.kept)
            else:
                reason = _waiting_on_nodes(
                    n_gpus, n_nodes, end.pool, end.open_by_node, end.taken, end.kept
                )
            self._reasons[(n_gpus, n_nodes)] = reason
        return reason

    def _reason_of_blocker(self, blocker: QueuedTask) -> str:
        if self._blocker_reason is None:
            end = self._end
            # The GPUs kept for it are free as far as the blocker itself is concerned.
            if blocker.gpu_mem:
                by_index = {g.index: g for g in end.pool}
                open_by_node = {n: list(ids) for n, ids in end.open_by_node.items()}
                room = dict(end.room)
                for index in end.target:
                    gpu = by_index[index]
                    if index in end.kept:
                        open_by_node.setdefault(gpu.node, []).append(index)
                    elif gpu.shared and gpu.shareable:
                        room[index] = gpu.mem_total - end.reserve - gpu.mem_declared
                reason = _memory_waiting(blocker.gpu_mem, end, room, open_by_node, {})
            elif not end.named:
                open_ids = sorted([*end.open_ids, *end.kept])
                reason = _waiting_reason(blocker.n_gpus, end.pool, open_ids, end.taken, {})
            else:
                by_index = {g.index: g for g in end.pool}
                open_by_node = {n: list(ids) for n, ids in end.open_by_node.items()}
                for index in end.kept:
                    open_by_node.setdefault(by_index[index].node, []).append(index)
                reason = _waiting_on_nodes(
                    blocker.n_gpus,
                    blocker.n_nodes,
                    end.pool,
                    {n: tuple(sorted(ids)) for n, ids in open_by_node.items()},
                    end.taken,
                    {},
                )
            if end.policy != "fifo":
                reason += f"; {_target_label(end.target, end)} reserved for it"
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


# A bucket's next task and the rest; its key is the start key, or (fair share) the owner's rank
# and then the start key.
_Head = tuple[tuple[Any, ...], Bucket, QueuedTask, Iterator[QueuedTask]]


def plan(
    queue: TaskQueue | Iterable[QueuedTask],
    gpus: Sequence[GpuView],
    *,
    policy: Policy = "fifo",
    running_cpu_tasks: int = 0,
    max_cpu_tasks: int | None = None,
    nodes: Sequence[str] = ("",),
    node_load: Mapping[str, int] | None = None,
    mem_reserve: int = 0,
    usage: Mapping[str, float] | None = None,
    held: Mapping[str, int] | None = None,
    max_gpus: Mapping[str, int] | None = None,
) -> Plan:
    """Decide which queued tasks start now; `Plan.reason` says why each of the others waits.

    Takes the queue as a TaskQueue (the plan looks at a few tasks beyond those it starts) or as
    any collection of tasks with unique ids (sorted into a TaskQueue first, O(n log n)).
    `nodes`: the alive nodes (those without GPUs count for CPU tasks); `node_load`: how many ANT
    tasks run on each node now (where tasks needing no GPU go). `mem_reserve`: bytes kept free
    on a GPU that memory tasks share.

    Users (core/users.py): `held` says how many GPUs each owner's tasks hold now, `max_gpus` the
    most an owner may hold at once (a task that would take its owner past it waits, and never
    blocks anyone else's; a memory task counts as one GPU). With policy "fairshare", GPU tasks go
    by owner: the owner with the least `usage` (decayed GPU-hours, core/usage.py) first, ties to
    the one holding fewer GPUs, then start order; each owner's own tasks in start order; backfill
    as with "backfill".
    """
    tasks = queue if isinstance(queue, TaskQueue) else TaskQueue(queue)
    pool = tuple(sorted(gpus, key=lambda g: g.index))
    alive = tuple(sorted({*nodes, *(g.node for g in pool if g.usable)}))
    named = any(alive) or any(g.node for g in pool)
    usable_by_node: dict[str, int] = {}
    total_by_node: dict[str, int] = {}
    open_by_node: dict[str, list[int]] = {}  # lowest first
    room: dict[int, int] = {}  # GPUs shared by memory tasks -> memory left for one more
    by_index: dict[int, GpuView] = {}
    biggest = 0
    for g in pool:
        by_index[g.index] = g
        total_by_node[g.node] = total_by_node.get(g.node, 0) + 1
        if g.usable:
            usable_by_node[g.node] = usable_by_node.get(g.node, 0) + 1
            biggest = max(biggest, g.mem_total - mem_reserve)
        if g.free:
            open_by_node.setdefault(g.node, []).append(g.index)
        elif g.shared and g.shareable:
            room[g.index] = g.mem_total - mem_reserve - g.mem_declared
    n_usable = sum(usable_by_node.values())
    starts: list[tuple[StartKey, Start]] = []
    examined = 0

    # CPU tasks never wait on GPU tasks: start them in queue order up to the limit.
    cpu_running = running_cpu_tasks
    load = dict(node_load or {})
    buckets = tasks.buckets()
    if max_cpu_tasks is None or cpu_running < max_cpu_tasks:
        cpu_heads = _heads(tasks, [b for b in buckets if b[0] == 0 and b[1] <= len(alive)])
        while cpu_heads:
            key, (_, n_nodes, _), task, rest = cpu_heads[0]
            examined += 1
            chosen = tuple(sorted(sorted(alive, key=lambda n: (load.get(n, 0), n))[:n_nodes]))
            starts.append((key, Start(task.task_id, (), chosen)))
            for node in chosen:
                load[node] = load.get(node, 0) + 1
            cpu_running += 1
            if max_cpu_tasks is not None and cpu_running >= max_cpu_tasks:
                break
            _advance(cpu_heads, rest)

    # GPU tasks, in queue order, by merging the buckets of tasks that could run some day (tasks
    # needing more GPUs than are usable are skipped: they would only stall the queue).
    def could_run(n: int, m: int, mem: int) -> bool:
        return n > 0 and (0 < mem <= biggest if mem else _could_fit(n, m, usable_by_node))

    queued_owners = tasks.owners() if max_gpus else set()
    limits = {o: n for o, n in (max_gpus or {}).items() if o in queued_owners}
    holding = dict(held or {})
    by_owner = policy == "fairshare" or bool(limits)
    if by_owner:
        heads = _owner_heads(tasks, could_run, policy, usage or {}, holding)
    else:
        heads = _heads(tasks, [b for b in buckets if could_run(*b)])
    n_open = sum(len(ids) for ids in open_by_node.values())
    taken: dict[int, str] = {}
    kept: dict[int, str] = {}
    blocker: QueuedTask | None = None
    target: tuple[int, ...] = ()
    while heads and (blocker is None or n_open or room):
        key, (n_gpus, n_nodes, gpu_mem), task, rest = heads[0]
        if by_owner:
            owner = task.owner
            if policy == "fairshare" and key[:2] != _rank(owner, usage or {}, holding):
                # The owner started a task in this pass: its heads go back in at its new rank.
                fresh = (*_rank(owner, usage or {}, holding), *start_key(task))
                heapq.heapreplace(heads, (fresh, (n_gpus, n_nodes, gpu_mem), task, rest))
                continue
            limit = limits.get(owner)
            if limit is not None and holding.get(owner, 0) + n_gpus * n_nodes > limit:
                heapq.heappop(heads)  # all its tasks of this size wait for its own to end
                continue
        examined += 1
        if gpu_mem:
            shared = _pick_memory(gpu_mem, room, open_by_node, by_index, mem_reserve)
            if shared is not None:
                index, placement = shared
                gpu = by_index[index]
                if index not in room:  # a free GPU becomes shared
                    open_by_node[gpu.node].remove(index)
                    n_open -= 1
                    room[index] = gpu.mem_total - mem_reserve
                room[index] -= gpu_mem
                starts.append(
                    (start_key(task), Start(task.task_id, (index,), (gpu.node,), placement))
                )
                taken.setdefault(index, task.task_id)
                _advance_after_start(heads, rest, task, 1, by_owner, policy, usage, holding)
                continue
        else:
            picked = _pick(open_by_node, n_gpus, n_nodes)
            if picked is not None:
                ids: list[int] = []
                links: list[str] = []
                for node in picked:
                    mine, how = best_set([by_index[i] for i in open_by_node[node]], n_gpus)
                    ids += mine
                    gone = set(mine)
                    open_by_node[node] = [i for i in open_by_node[node] if i not in gone]
                    if how is not None and n_gpus > 1:
                        links.append(explain(mine, how))
                n_open -= len(ids)
                why = "; ".join(links) or None
                starts.append((start_key(task), Start(task.task_id, tuple(ids), picked, why)))
                taken.update(dict.fromkeys(ids, task.task_id))
                _advance_after_start(heads, rest, task, len(ids), by_owner, policy, usage, holding)
                continue
        if blocker is None:
            blocker = task
            if policy == "fifo":
                break  # everything after it waits behind it
            if gpu_mem:
                target = _memory_target(gpu_mem, pool, mem_reserve)
            else:
                target = _target_set(n_gpus, n_nodes, pool)
            is_open = {i for ids in open_by_node.values() for i in ids}
            kept = {i: task.task_id for i in target if i in is_open}
            for node, ids in open_by_node.items():
                open_by_node[node] = [i for i in ids if i not in kept]
            n_open -= len(kept)
            for index in target:  # the target drains: no memory task joins it meanwhile
                room.pop(index, None)
        # Open GPUs only get fewer during a pass: no task of this bucket can start any more.
        heapq.heappop(heads)

    starts.sort(key=lambda ks: ks[0])
    end = _PassEnd(
        pool=pool,
        named=named,
        nodes=alive,
        usable_by_node=usable_by_node,
        total_by_node=total_by_node,
        n_usable=n_usable,
        policy=policy,
        open_ids=tuple(sorted(i for ids in open_by_node.values() for i in ids)),
        open_by_node={n: tuple(ids) for n, ids in open_by_node.items() if ids},
        taken=taken,
        kept=kept,
        blocker=blocker,
        target=target,
        cpu_running=cpu_running,
        max_cpu_tasks=max_cpu_tasks,
        room=room,
        reserve=mem_reserve,
        biggest=biggest,
        held=holding,
        max_gpus=dict(max_gpus or {}),
    )
    return Plan(tuple(s for _, s in starts), examined, end, tasks)


def _heads(tasks: TaskQueue, buckets: Iterable[Bucket]) -> list[_Head]:
    """The first task of each of these buckets, as a heap in start order."""
    heads: list[_Head] = []
    for bucket in buckets:
        rest = tasks.tasks_needing(*bucket)
        first = next(rest)  # a queue keeps no empty bucket
        heads.append((start_key(first), bucket, first, rest))
    heapq.heapify(heads)
    return heads


def _advance(heads: list[_Head], rest: Iterator[QueuedTask]) -> None:
    """The first head started: its bucket's next task takes its place (or the bucket is done)."""
    following = next(rest, None)
    if following is None:
        heapq.heappop(heads)
    else:
        heapq.heapreplace(heads, (start_key(following), heads[0][1], following, rest))


def _advance_after_start(
    heads: list[_Head],
    rest: Iterator[QueuedTask],
    task: QueuedTask,
    n_taken: int,
    by_owner: bool,
    policy: Policy,
    usage: Mapping[str, float] | None,
    holding: dict[str, int],
) -> None:
    """The first head started, on `n_taken` GPUs: count them for its owner, then advance."""
    if by_owner:
        holding[task.owner] = holding.get(task.owner, 0) + n_taken
        _advance_owned(heads, rest, policy, usage or {}, holding)
    else:
        _advance(heads, rest)


def _rank(owner: str, usage: Mapping[str, float], holding: Mapping[str, int]) -> tuple[float, int]:
    """Fair share's order of owners: least decayed GPU-hours first, then fewest GPUs held."""
    return (usage.get(owner, 0.0), holding.get(owner, 0))


def _owned_key(
    task: QueuedTask, policy: Policy, usage: Mapping[str, float], holding: Mapping[str, int]
) -> tuple[object, ...]:
    if policy == "fairshare":
        return (*_rank(task.owner, usage, holding), *start_key(task))
    return start_key(task)


def _owner_heads(
    tasks: TaskQueue,
    could_run: Callable[[int, int, int], bool],
    policy: Policy,
    usage: Mapping[str, float],
    holding: Mapping[str, int],
) -> list[_Head]:
    """The first GPU task of each owner's bucket that could run some day, as a heap: in start
    order, or (fairshare) by the owner's rank, then start order."""
    heads: list[_Head] = []
    for owner, bucket in tasks.groups():
        if could_run(*bucket):
            rest = tasks.tasks_of(owner, *bucket)
            first = next(rest)
            key = _owned_key(first, policy, usage, holding)
            heads.append((key, bucket, first, rest))
    heapq.heapify(heads)
    return heads


def _advance_owned(
    heads: list[_Head],
    rest: Iterator[QueuedTask],
    policy: Policy,
    usage: Mapping[str, float],
    holding: Mapping[str, int],
) -> None:
    following = next(rest, None)
    if following is None:
        heapq.heappop(heads)
    else:
        key = _owned_key(following, policy, usage, holding)
        heapq.heapreplace(heads, (key, heads[0][1], following, rest))


def _could_fit(n_gpus: int, n_nodes: int, usable_by_node: Mapping[str, int]) -> bool:
    """Some day, once every usable GPU is free (n_gpus > 0)."""
    return sum(1 for count in usable_by_node.values() if count >= n_gpus) >= n_nodes


def _pick(
    open_by_node: Mapping[str, Sequence[int]], n_gpus: int, n_nodes: int
) -> tuple[str, ...] | None:
    """The nodes a task of this shape starts on now (best fit, in name order), None if none."""
    fitting = [n for n, ids in open_by_node.items() if len(ids) >= n_gpus]
    if len(fitting) < n_nodes:
        return None
    fitting.sort(key=lambda n: (len(open_by_node[n]), n))
    return tuple(sorted(fitting[:n_nodes]))


def _target_set(n_gpus: int, n_nodes: int, pool: Sequence[GpuView]) -> tuple[int, ...]:
    """The GPUs the oldest blocked task will run on under backfill (pool is sorted by index):
    the first nodes by name where it fits on GPUs not busy outside ANT, then those where it fits
    only with busy-outside ones; on each, the lowest-numbered clean GPUs, then busy-outside ones."""
    clean: dict[str, list[int]] = {}
    outside: dict[str, list[int]] = {}
    for g in pool:
        if g.usable:
            bucket = clean if g.external is None else outside
            bucket.setdefault(g.node, []).append(g.index)
    names = sorted({*clean, *outside})
    first = [n for n in names if len(clean.get(n, ())) >= n_gpus]
    then = [
        n
        for n in names
        if len(clean.get(n, ())) < n_gpus <= len(clean.get(n, ())) + len(outside.get(n, ()))
    ]
    by_index = {g.index: g for g in pool}
    ids: list[int] = []
    for node in sorted((first + then)[:n_nodes]):
        mine, busy = clean.get(node, []), outside.get(node, [])
        if len(mine) >= n_gpus:  # the set with the best links, as a start would pick
            ids += sorted(best_set([by_index[i] for i in mine], n_gpus)[0])
        else:
            ids += sorted(mine + busy[: n_gpus - len(mine)])
    return tuple(ids)


def _memory_target(gpu_mem: int, pool: Sequence[GpuView], reserve: int) -> tuple[int, ...]:
    """The GPU a blocked memory task reserves under backfill: the lowest-numbered usable GPU big
    enough for it, one not busy outside ANT if there is such a GPU (it only depends on what is
    usable, so it stays put from pass to pass)."""
    big = [g for g in pool if g.usable and g.mem_total - reserve >= gpu_mem]
    clean = [g for g in big if g.external is None]
    return ((clean or big)[0].index,) if big else ()


def _pick_memory(
    gpu_mem: int,
    room: Mapping[int, int],
    open_by_node: Mapping[str, Sequence[int]],
    by_index: Mapping[int, GpuView],
    reserve: int,
) -> tuple[int, str] | None:
    """The GPU a memory task starts on now, and the placement text; None if none has room.
    A shared GPU where it fits tightest first; else a free GPU big enough (best-fit node, then
    the GPU the topology rule picks: the fullest island, say)."""
    fits = [(left, index) for index, left in room.items() if left >= gpu_mem]
    if fits:
        _, index = min(fits)
        gpu = by_index[index]
        declared = gpu.mem_total - reserve - room[index]
        return index, (
            f"GPU {gpu.label} shared: declares {format_size(gpu_mem)}, "
            f"{format_size(declared)} declared there already; "
            f"{format_size(room[index] - gpu_mem)} left of {format_size(gpu.mem_total)}"
            + (f" ({format_size(reserve)} reserve)" if reserve else "")
        )
    candidates: dict[str, list[GpuView]] = {}
    for node, ids in open_by_node.items():
        big = [by_index[i] for i in ids if by_index[i].mem_total - reserve >= gpu_mem]
        if big:
            candidates[node] = big
    if not candidates:
        return None
    node = min(candidates, key=lambda n: (len(open_by_node[n]), n))
    index = best_set(candidates[node], 1)[0][0]
    gpu = by_index[index]
    return index, (
        f"GPU {gpu.label} shared: declares {format_size(gpu_mem)}, the first memory task there; "
        f"{format_size(gpu.mem_total - reserve - gpu_mem)} left of {format_size(gpu.mem_total)}"
        + (f" ({format_size(reserve)} reserve)" if reserve else "")
    )


def _memory_never_fits(gpu_mem: int, end: _PassEnd) -> str:
    """e.g. 'needs 20 GiB of GPU memory but the largest usable GPU has 16 GiB (15 GiB after
    the 1 GiB reserve)'."""
    needs = f"needs {format_size(gpu_mem)} of GPU memory but"
    usable = [g for g in end.pool if g.usable]
    if not usable:
        return f"{needs} no GPU is usable" if end.pool else f"{needs} ANT has no GPUs"
    most = max(g.mem_total for g in usable)
    if most == 0:
        return f"{needs} no usable GPU reports its memory"
    after = f" ({format_size(most - end.reserve)} after the {format_size(end.reserve)} reserve)"
    return f"{needs} the largest usable GPU has {format_size(most)}{after if end.reserve else ''}"


def _memory_waiting(
    gpu_mem: int,
    end: _PassEnd,
    room: Mapping[int, int],
    open_by_node: Mapping[str, Sequence[int]],
    kept: Mapping[int, str],
) -> str:
    """e.g. 'needs 20 GiB of GPU memory; GPU 1 has 18 GiB left (after the 1 GiB reserve);
    GPU 0 in use by t1'."""
    parts = [f"needs {format_size(gpu_mem)} of GPU memory"]
    by_index = {g.index: g for g in end.pool}
    left = [
        f"GPU {by_index[i].label} has {format_size(max(0, r))} left"
        for i, r in sorted(room.items())
    ]
    is_open = {i for ids in open_by_node.values() for i in ids}
    for i in sorted(is_open):
        size = format_size(max(0, by_index[i].mem_total - end.reserve))
        left.append(f"GPU {by_index[i].label} has only {size}")
    if left:
        reserve = f" (after the {format_size(end.reserve)} reserve)" if end.reserve else ""
        parts.append(", ".join(left) + reserve)
    else:
        parts.append("no GPU free or shared")
    not_open = [
        (g, _why_not_open(g, end.taken, kept))
        for g in end.pool
        if g.index not in is_open and g.index not in room
    ]
    return "; ".join([*parts, *_grouped_labels(not_open)])


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
    if gpu.shared and len(gpu.shared) == len(gpu.allocated_to):
        return f"shared by memory tasks {', '.join(gpu.shared_by)}"
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


# ---------------------------------------------------------------------------- reasons with nodes


def _too_few_nodes(n_nodes: int, nodes: Sequence[str]) -> str:
    """e.g. 'needs 2 nodes but ANT has only 1'."""
    needs = f"needs {_nodes(n_nodes)} but ANT has"
    return f"{needs} only {len(nodes)}" if nodes else f"{needs} none"


def _never_fits(n_gpus: int, n_nodes: int, end: _PassEnd) -> str:
    """Why a GPU task can never start with the GPUs ANT has (while they stay as they are)."""
    if n_nodes > 1 and n_nodes > len(end.nodes):
        return _too_few_nodes(n_nodes, end.nodes)
    if not end.named:
        return _never_fits_reason(n_gpus, end.pool)
    return _never_fits_on_nodes(n_gpus, n_nodes, end.pool, end.total_by_node, end.usable_by_node)


def _never_fits_on_nodes(
    n_gpus: int,
    n_nodes: int,
    pool: Sequence[GpuView],
    total_by_node: Mapping[str, int],
    usable_by_node: Mapping[str, int],
) -> str:
    """e.g. 'needs 6 GPUs on one node but the largest node has 4 (node-a, node-b)'."""
    if n_nodes == 1:
        needs = f"needs {_count(n_gpus)} on one node"
    else:
        needs = f"needs {n_nodes} nodes with {_count(n_gpus)} each"
    if not pool:
        return f"{needs} but ANT has no GPUs"
    big = sorted(n for n, total in total_by_node.items() if total >= n_gpus)
    if len(big) < n_nodes:
        if n_nodes == 1:
            most = max(total_by_node.values())
            largest = sorted(n for n, total in total_by_node.items() if total == most)
            return f"{needs} but the largest node has {most} ({_names(largest)})"
        if not big:
            return f"{needs} but no node has {_count(n_gpus)}"
        return f"{needs} but only {len(big)} {_has(len(big))} {_count(n_gpus)} ({_names(big)})"
    # Enough GPUs exist; too few of them can be used.
    word = "usable" if any(g.enabled and not g.usable for g in pool) else "enabled"
    off = [(g, _why_not_open(g, {}, {})) for g in pool if not g.usable]
    if n_nodes == 1:
        most = max(usable_by_node.values(), default=0)
        if most == 0:
            head = f"no GPU is {word}"
        else:
            best = sorted(n for n, count in usable_by_node.items() if count == most)
            verb = "is" if most == 1 else "are"
            head = f"at most {most} {verb} {word} on any node ({_names(best)})"
    else:
        ok = sorted(n for n, count in usable_by_node.items() if count >= n_gpus)
        if ok:
            head = f"only {len(ok)} {_has(len(ok))} {n_gpus} {word} ({_names(ok)})"
        else:
            head = f"no node has {n_gpus} {word}"
    return "; ".join([f"{needs} but {head}", *_grouped_labels(off)])


def _waiting_on_nodes(
    n_gpus: int,
    n_nodes: int,
    pool: Sequence[GpuView],
    open_by_node: Mapping[str, Sequence[int]],
    taken: Mapping[int, str],
    kept: Mapping[int, str],
) -> str:
    """e.g. 'needs 4 GPUs on one node; largest free block is 2 (node-b); GPUs node-a:0,
    node-a:1 in use by r' or 'needs 2 nodes with 2 free GPUs each; 1 has (node-a); ...'."""
    if n_nodes == 1:
        parts = [f"needs {_count(n_gpus)} on one node"]
        sizes = {n: len(ids) for n, ids in open_by_node.items() if ids}
        if sizes:
            most = max(sizes.values())
            largest = sorted(n for n, size in sizes.items() if size == most)
            parts.append(f"largest free block is {most} ({_names(largest)})")
        else:
            parts.append("none free")
    else:
        parts = [f"needs {n_nodes} nodes with {n_gpus} free GPU{'' if n_gpus == 1 else 's'} each"]
        have = sorted(n for n, ids in open_by_node.items() if len(ids) >= n_gpus)
        parts.append(f"{len(have)} {_has(len(have))} ({_names(have)})" if have else "none has")
    is_open = {i for ids in open_by_node.values() for i in ids}
    not_open = [(g, _why_not_open(g, taken, kept)) for g in pool if g.index not in is_open]
    return "; ".join([*parts, *_grouped_labels(not_open)])


def _target_label(target: Sequence[int], end: _PassEnd) -> str:
    if not end.named:
        return _gpu_label(target)
    by_index = {g.index: g for g in end.pool}
    labels = [by_index[i].label for i in target]
    return f"GPU {labels[0]}" if len(labels) == 1 else f"GPUs {', '.join(labels)}"


def _grouped_labels(causes: Iterable[tuple[GpuView, str]]) -> list[str]:
    """[(node-a:0, 'in use by a'), (node-a:1, 'in use by a')] -> ['GPUs node-a:0, node-a:1 in
    use by a'], by lowest index."""
    by_cause: dict[str, list[str]] = {}
    for gpu, cause in causes:
        by_cause.setdefault(cause, []).append(gpu.label)
    return [
        f"GPU {labels[0]} {cause}" if len(labels) == 1 else f"GPUs {', '.join(labels)} {cause}"
        for cause, labels in by_cause.items()
    ]


def _names(names: Sequence[str]) -> str:
    """Node names for a reason: at most four, then how many more."""
    if len(names) <= 4:
        return ", ".join(names)
    return f"{', '.join(names[:3])} and {len(names) - 3} more"


def _has(count: int) -> str:
    return "has" if count == 1 else "have"


def _nodes(n_nodes: int) -> str:
    return "1 node" if n_nodes == 1 else f"{n_nodes} nodes"
