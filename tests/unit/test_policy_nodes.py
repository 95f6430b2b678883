"""The policy over a pool of several nodes: one node per n-GPU task, gangs on distinct nodes, all or
nothing, backfill without starvation, reasons that name nodes. (Everything on node "" is
test_policy.py, which must read exactly as it did before nodes existed.)"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ant_scheduler.core.policy import (
    NOT_PLANNED,
    GpuView,
    Plan,
    Policy,
    QueuedTask,
    Start,
    order_queue,
    plan,
)
from ant_scheduler.core.queue import TaskQueue

POLICIES: list[Policy] = ["fifo", "backfill"]
OFFLINE = "offline: node left the cluster"


def cluster(layout: dict[str, int], **busy: tuple[str, ...]) -> list[GpuView]:
    """GPUs numbered across nodes in the order given; `g3=("r",)` puts task r on GPU 3."""
    pool, index = [], 0
    for node, count in layout.items():
        for local in range(count):
            pool.append(
                GpuView(index, allocated_to=busy.get(f"g{index}", ()), node=node, local_index=local)
            )
            index += 1
    return pool


def started(p: Plan) -> dict[str, tuple[int, ...]]:
    return {s.task_id: s.gpu_ids for s in p.starts}


AB = ("node-a", "node-b")


# ------------------------------------------------------------------ examples


def test_an_n_gpu_task_gets_all_its_gpus_on_one_node() -> None:
    pool = cluster({"node-a": 4, "node-b": 4}, g0=("r",), g1=("r",), g4=("s",), g5=("s",))
    p = plan([QueuedTask("x", 3)], pool, nodes=AB)
    assert p.starts == ()
    assert p.pending["x"] == (
        "needs 3 GPUs on one node; largest free block is 2 (node-a, node-b); "
        "GPUs node-a:0, node-a:1 in use by r; GPUs node-b:0, node-b:1 in use by s"
    )
    p = plan([QueuedTask("x", 2)], pool, nodes=AB)
    assert p.starts == (Start("x", (2, 3), ("node-a",)),)


def test_the_reason_names_the_node_with_the_largest_free_block() -> None:
    pool = cluster({"node-a": 4, "node-b": 4}, g0=("r",), g1=("r",), g2=("r",), g3=("r",))
    pool[4] = GpuView(4, allocated_to=("s",), node="node-b", local_index=0)
    pool[5] = GpuView(5, allocated_to=("s",), node="node-b", local_index=1)
    p = plan([QueuedTask("x", 4)], pool, nodes=AB)
    assert p.pending["x"].startswith("needs 4 GPUs on one node; largest free block is 2 (node-b)")


def test_small_tasks_fill_the_fullest_node_first() -> None:
    pool = cluster({"node-a": 4, "node-b": 4}, g4=("s",), g5=("s",), g6=("s",))
    p = plan([QueuedTask("one", 1), QueuedTask("four", 4, 0, 1)], pool, nodes=AB)
    # "one" goes to node-b's last GPU, so that node-a stays whole for "four".
    assert p.starts == (
        Start("one", (7,), ("node-b",)),
        Start("four", (0, 1, 2, 3), ("node-a",)),
    )


def test_a_gang_runs_on_distinct_nodes_all_or_nothing() -> None:
    pool = cluster({"node-a": 2, "node-b": 2, "node-c": 2}, g2=("r",))
    p = plan([QueuedTask("g", 2, n_nodes=2)], pool, nodes=(*AB, "node-c"))
    assert p.starts == (Start("g", (0, 1, 4, 5), ("node-a", "node-c")),)
    p = plan([QueuedTask("g", 2, n_nodes=3)], pool, nodes=(*AB, "node-c"))
    assert p.starts == ()
    assert p.pending["g"] == (
        "needs 3 nodes with 2 free GPUs each; 2 have (node-a, node-c); GPU node-b:0 in use by r"
    )
    p = plan([QueuedTask("g", 2, n_nodes=2)], cluster({"node-a": 2}, g0=("r",)), nodes=AB)
    assert p.pending["g"] == "needs 2 nodes with 2 GPUs each but only 1 has 2 GPUs (node-a)"


def test_never_fitting_shapes_say_why() -> None:
    pool = cluster({"node-a": 4, "node-b": 2})
    cases = {
        QueuedTask("wide", 5): "needs 5 GPUs on one node but the largest node has 4 (node-a)",
        QueuedTask("many", 1, n_nodes=3): "needs 3 nodes but ANT has only 2",
        QueuedTask("cpu3", 0, n_nodes=3): "needs 3 nodes but ANT has only 2",
        QueuedTask("two4", 4, n_nodes=2): (
            "needs 2 nodes with 4 GPUs each but only 1 has 4 GPUs (node-a)"
        ),
    }
    p = plan(list(cases), pool, nodes=AB)
    assert p.starts == ()
    assert dict(p.pending) == {t.task_id: r for t, r in cases.items()}
    # The local executor has one node: a gang never fits there.
    p = plan([QueuedTask("g", 1, n_nodes=2), QueuedTask("c", 0, n_nodes=2)], [GpuView(0)])
    assert dict(p.pending) == {
        "g": "needs 2 nodes but ANT has only 1",
        "c": "needs 2 nodes but ANT has only 1",
    }


def test_never_fitting_because_gpus_are_off() -> None:
    pool = cluster({"node-a": 2, "node-b": 2})
    pool[1] = GpuView(1, enabled=False, node="node-a", local_index=1)
    pool[2] = GpuView(2, unavailable=OFFLINE, node="node-b", local_index=0)
    p = plan([QueuedTask("two", 2), QueuedTask("g", 1, n_nodes=2, queue_seq=1)], pool, nodes=AB)
    assert p.starts == (Start("g", (0, 3), AB),)
    assert p.pending["two"] == (
        "needs 2 GPUs on one node but at most 1 is usable on any node (node-a, node-b); "
        f"GPU node-a:1 disabled; GPU node-b:0 unavailable ({OFFLINE})"
    )
    p = plan([QueuedTask("g", 2, n_nodes=2)], pool, nodes=AB)
    assert p.pending["g"].startswith("needs 2 nodes with 2 GPUs each but no node has 2 usable; ")


def test_a_node_that_left_takes_its_gpus_out_of_the_pool() -> None:
    pool = [
        GpuView(0, node="node-a", local_index=0),
        GpuView(1, node="node-b", local_index=0, unavailable=OFFLINE),
    ]
    p = plan([QueuedTask("g", 1, n_nodes=2), QueuedTask("c", 0, 0, 1)], pool, nodes=["node-a"])
    assert p.starts == (Start("c", (), ("node-a",)),)
    assert p.pending["g"] == "needs 2 nodes but ANT has only 1"


def test_cpu_tasks_go_to_the_least_loaded_nodes() -> None:
    nodes = ("node-a", "node-b", "node-c")
    q = [QueuedTask(f"c{i}", 0, 0, i) for i in range(4)] + [QueuedTask("gang", 0, 0, 9, 2)]
    p = plan(q, [], nodes=nodes, node_load={"node-a": 2, "node-c": 1})
    # Loads a2 b0 c1 -> b; a2 b1 c1 -> b (by name); a2 b2 c1 -> c; all 2 -> a; the gang: b, c.
    assert [s.nodes for s in p.starts] == [
        ("node-b",),
        ("node-b",),
        ("node-c",),
        ("node-a",),
        ("node-b", "node-c"),
    ]
    # No node at all (every node left): CPU tasks wait, and say why.
    p = plan([QueuedTask("c", 0)], [], nodes=())
    assert p.pending == {"c": "needs 1 node but ANT has none"}


def test_backfill_keeps_the_blockers_target_on_one_node() -> None:
    pool = cluster({"node-a": 4, "node-b": 4}, g0=("r",), g1=("r",), g4=("s",))
    q = [QueuedTask("wide", 4, 0, 0), QueuedTask("one", 1, 0, 1), QueuedTask("two", 2, 0, 2)]
    p = plan(q, pool, nodes=AB, policy="backfill")
    # Target: node-a's four GPUs; node-a:2 and node-a:3 are kept, node-b's free ones are not.
    assert p.starts == (
        Start("one", (5,), ("node-b",)),
        Start("two", (6, 7), ("node-b",)),
    )
    assert p.pending["wide"].endswith("GPUs node-a:0, node-a:1, node-a:2, node-a:3 reserved for it")
    fifo = plan(q, pool, nodes=AB, policy="fifo")
    assert fifo.starts == ()
    assert fifo.pending["one"] == "waiting behind wide (fifo)"


def test_reasons_of_tasks_that_wait_behind_kept_gpus() -> None:
    pool = cluster({"node-a": 2, "node-b": 1}, g0=("r",))
    q = [QueuedTask("B", 2, 0, 0), QueuedTask("late", 1, 0, 1), QueuedTask("g", 1, 0, 2, 2)]
    p = plan(q, pool, nodes=AB, policy="backfill")
    assert p.starts == (Start("late", (2,), ("node-b",)),)
    assert p.pending == {
        "B": "needs 2 GPUs on one node; largest free block is 1 (node-a); "
        "GPU node-a:0 in use by r; GPU node-b:0 in use by late; "
        "GPUs node-a:0, node-a:1 reserved for it",
        "g": "needs 2 nodes with 1 free GPU each; none has; GPU node-a:0 in use by r; "
        "GPU node-a:1 kept for older task B; GPU node-b:0 in use by late",
    }
    assert p.reason(QueuedTask("new", 1, 0, 5)) == (
        "needs 1 GPU on one node; none free; GPU node-a:0 in use by r; "
        "GPU node-a:1 kept for older task B; GPU node-b:0 in use by late"
    )
    assert p.reason(QueuedTask("cpu", 0, 0, 5)) == NOT_PLANNED


def test_labels() -> None:
    assert GpuView(3).label == "3"
    assert GpuView(3, node="node-b", local_index=1).label == "node-b:1"
    assert GpuView(3, node="node-b").label == "node-b:3"


# ------------------------------------------------------------------ properties


@st.composite
def clusters(draw: st.DrawFn) -> tuple[list[GpuView], list[str]]:
    """1-4 nodes with 0-4 GPUs each (indices scattered), some left the cluster; plus GPU-less
    alive nodes. Returns (GPUs in no particular order, alive nodes)."""
    n_nodes = draw(st.integers(1, 4))
    indices = iter(draw(st.permutations(range(20))))
    pool: list[GpuView] = []
    alive: list[str] = []
    for k in range(n_nodes):
        node = f"n{k}"
        gone = draw(st.sampled_from([False, False, False, True]))
        if not gone:
            alive.append(node)
        for local in range(draw(st.integers(0, 4))):
            pool.append(
                GpuView(
                    next(indices),
                    enabled=draw(st.sampled_from([True, True, True, False])),
                    allocated_to=draw(st.sampled_from([(), (), (), ("r1",), ("r2", "r3")])),
                    external=draw(st.sampled_from([None, None, None, "pid 7 bob"])),
                    unavailable=OFFLINE if gone else draw(st.sampled_from([None] * 5 + ["err"])),
                    node=node,
                    local_index=local,
                )
            )
    draw(st.randoms()).shuffle(pool)
    return pool, alive


@st.composite
def queues(draw: st.DrawFn) -> list[QueuedTask]:
    """0-20 tasks, 0-4 GPUs on 1-3 nodes each; ties broken by task_id."""
    return [
        QueuedTask(
            f"t{k}",
            draw(st.integers(0, 4)),
            draw(st.integers(-2, 2)),
            draw(st.integers(0, 30)),
            draw(st.sampled_from([1, 1, 1, 2, 3])),
        )
        for k in range(draw(st.integers(0, 20)))
    ]


def node_of(pool: Sequence[GpuView]) -> dict[int, str]:
    return {g.index: g.node for g in pool}


def usable_by_node(pool: Sequence[GpuView]) -> dict[str, int]:
    out: dict[str, int] = {}
    for g in pool:
        if g.usable:
            out[g.node] = out.get(g.node, 0) + 1
    return out


def could_fit(t: QueuedTask, pool: Sequence[GpuView], alive: Sequence[str]) -> bool:
    if t.n_gpus == 0:
        return t.n_nodes <= len(set(alive) | set(usable_by_node(pool)))
    return sum(1 for c in usable_by_node(pool).values() if c >= t.n_gpus) >= t.n_nodes


def free_ids(pool: Sequence[GpuView]) -> set[int]:
    return {g.index for g in pool if g.free}


def fits(t: QueuedTask, open_ids: set[int], pool: Sequence[GpuView]) -> bool:
    per: dict[str, int] = {}
    for i in open_ids:
        per[node_of(pool)[i]] = per.get(node_of(pool)[i], 0) + 1
    return sum(1 for c in per.values() if c >= t.n_gpus) >= t.n_nodes


def target_set(t: QueuedTask, pool: Sequence[GpuView]) -> list[int]:
    """The rule of the module docstring, restated."""
    ordered = sorted(pool, key=lambda g: g.index)
    names = sorted({g.node for g in ordered})
    clean = {
        n: [g.index for g in ordered if g.node == n and g.usable and not g.external] for n in names
    }
    busy = {n: [g.index for g in ordered if g.node == n and g.usable and g.external] for n in names}
    first = [n for n in names if len(clean[n]) >= t.n_gpus]
    then = [n for n in names if len(clean[n]) < t.n_gpus <= len(clean[n]) + len(busy[n])]
    out: list[int] = []
    for n in sorted((first + then)[: t.n_nodes]):
        out += sorted(clean[n][: t.n_gpus] + busy[n][: max(0, t.n_gpus - len(clean[n]))])
    return out


def check_start(s: Start, t: QueuedTask, pool: Sequence[GpuView], alive: Sequence[str]) -> None:
    assert len(s.nodes) == t.n_nodes, "not one node per rank"
    assert len(set(s.nodes)) == len(s.nodes), "a gang with two ranks on one node"
    assert list(s.nodes) == sorted(s.nodes), "ranks are not in node name order"
    assert set(s.nodes) <= set(alive) | {g.node for g in pool if g.usable}
    assert len(s.gpu_ids) == t.n_gpus * t.n_nodes, "not all or nothing"
    nodes = node_of(pool)
    for rank, node in enumerate(s.nodes):
        mine = s.gpu_ids[rank * t.n_gpus : (rank + 1) * t.n_gpus]
        assert all(nodes[i] == node for i in mine), "a rank's GPUs are not on its node"
        assert list(mine) == sorted(mine)


@given(clusters(), queues(), st.sampled_from(POLICIES), st.none() | st.integers(1, 6))
@settings(max_examples=400, deadline=None)
def test_plan_invariants_over_nodes(
    layout: tuple[list[GpuView], list[str]],
    queue: list[QueuedTask],
    policy: Policy,
    max_cpu: int | None,
) -> None:
    pool, alive = layout
    p = plan(queue, pool, policy=policy, nodes=alive, max_cpu_tasks=max_cpu)
    by_id = {t.task_id: t for t in queue}
    given_out = [i for s in p.starts for i in s.gpu_ids]
    assert len(given_out) == len(set(given_out)), "a GPU was assigned twice"
    assert set(given_out) <= free_ids(pool), "a GPU that is not free was assigned"
    ids = [s.task_id for s in p.starts]
    assert len(ids) == len(set(ids))
    assert set(ids) | set(p.pending) == set(by_id) and not set(ids) & set(p.pending)
    assert all(isinstance(r, str) and r for r in p.pending.values())
    for s in p.starts:
        check_start(s, by_id[s.task_id], pool, alive)
    order = [t.task_id for t in order_queue(queue)]
    assert ids == [i for i in order if i in set(ids)], "starts are not in queue order"
    for t in queue:
        if not could_fit(t, pool, alive):
            assert " but " in p.pending[t.task_id], p.pending[t.task_id]
        assert p.reason(t) == p.pending.get(t.task_id)


def gpu_tasks(queue: list[QueuedTask], pool: list[GpuView], alive: list[str]) -> list[QueuedTask]:
    return [t for t in order_queue(queue) if t.n_gpus > 0 and could_fit(t, pool, alive)]


@given(clusters(), queues())
@settings(max_examples=400, deadline=None)
def test_fifo_over_nodes_stops_at_the_first_task_that_does_not_fit(
    layout: tuple[list[GpuView], list[str]], queue: list[QueuedTask]
) -> None:
    pool, alive = layout
    p = plan(queue, pool, policy="fifo", nodes=alive)
    waiting = gpu_tasks(queue, pool, alive)
    n_started = sum(1 for t in waiting if t.task_id not in p.pending)
    assert all(t.task_id not in p.pending for t in waiting[:n_started])
    if n_started < len(waiting):
        blocker, *rest = waiting[n_started:]
        left = free_ids(pool) - {i for s in p.starts for i in s.gpu_ids}
        assert not fits(blocker, left, pool)
        for t in rest:
            assert p.pending[t.task_id] == f"waiting behind {blocker.task_id} (fifo)"


@given(clusters(), queues())
@settings(max_examples=400, deadline=None)
def test_backfill_over_nodes_keeps_the_blockers_target(
    layout: tuple[list[GpuView], list[str]], queue: list[QueuedTask]
) -> None:
    pool, alive = layout
    fifo = started(plan(queue, pool, policy="fifo", nodes=alive))
    p = plan(queue, pool, policy="backfill", nodes=alive)
    assert fifo.items() <= started(p).items(), "backfill must start what fifo starts, alike"
    waiting = gpu_tasks(queue, pool, alive)
    blocked = next((t for t in waiting if t.task_id in p.pending), None)
    if blocked is None:
        return
    target = target_set(blocked, pool)
    nodes = node_of(pool)
    per_node: dict[str, int] = {}
    for i in target:
        per_node[nodes[i]] = per_node.get(nodes[i], 0) + 1
    assert len(per_node) == blocked.n_nodes, "the target is not on n_nodes nodes"
    assert set(per_node.values()) == {blocked.n_gpus}
    order = [t.task_id for t in order_queue(queue)]
    later = set(order[order.index(blocked.task_id) + 1 :])
    for s in p.starts:
        if s.task_id in later:
            assert not set(s.gpu_ids) & set(target), f"{s.task_id} took a GPU kept for blocked"
    assert p.pending[blocked.task_id].endswith(" reserved for it")
    # Nothing that waits could have used what is left over outside the target.
    leftover = free_ids(pool) - {i for s in p.starts for i in s.gpu_ids}
    assert not fits(blocked, leftover, pool)
    for t in waiting:
        if t.task_id in later and t.task_id in p.pending:
            assert not fits(t, leftover - set(target), pool)


@given(clusters(), queues(), st.sampled_from(POLICIES), st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_plan_over_nodes_does_not_depend_on_input_order(
    layout: tuple[list[GpuView], list[str]],
    queue: list[QueuedTask],
    policy: Policy,
    rng: random.Random,
) -> None:
    pool, alive = layout
    shuffled = (queue[:], pool[:], alive[:])
    for part in shuffled:
        rng.shuffle(part)  # type: ignore[arg-type]
    a = plan(queue, pool, policy=policy, nodes=alive, max_cpu_tasks=2)
    b = plan(shuffled[0], shuffled[1], policy=policy, nodes=shuffled[2], max_cpu_tasks=2)
    assert a.starts == b.starts
    assert dict(a.pending) == dict(b.pending)


def reference_plan_over_nodes(
    queue: list[QueuedTask],
    pool: list[GpuView],
    *,
    policy: Policy,
    nodes: Sequence[str],
    running_cpu_tasks: int = 0,
    max_cpu_tasks: int | None = None,
    node_load: dict[str, int] | None = None,
) -> tuple[Start, ...]:
    """The rule of the policy module docstring, walked the slow and obvious way: sort the whole
    queue, look at every task, recount the open GPUs of every node for each. Kept to show that the
    fast plan (buckets per shape, early exit) decides the same. Its decisions are its own."""
    ordered = sorted(pool, key=lambda g: g.index)
    alive = sorted(set(nodes) | {g.node for g in ordered if g.usable})
    load = {n: (node_load or {}).get(n, 0) for n in alive}
    cpu_running = running_cpu_tasks
    taken: set[int] = set()  # GPUs this plan starts a task on
    kept: set[int] = set()  # backfill: free GPUs of the blocker's target set
    blocker: QueuedTask | None = None
    starts: list[Start] = []
    for task in sorted(queue, key=lambda t: (-t.priority, t.queue_seq, t.task_id)):
        if task.n_gpus == 0:
            if task.n_nodes > len(alive):
                continue  # never fits
            if max_cpu_tasks is not None and cpu_running >= max_cpu_tasks:
                continue  # waits for the limit
            least = sorted(alive, key=lambda n: (load[n], n))[: task.n_nodes]
            for n in least:
                load[n] += 1
            cpu_running += 1
            starts.append(Start(task.task_id, (), tuple(sorted(least))))
            continue
        usable = {n: sum(1 for g in ordered if g.node == n and g.usable) for n in alive}
        if sum(1 for count in usable.values() if count >= task.n_gpus) < task.n_nodes:
            continue  # never fits: skipped, it would only stall the queue
        if blocker is not None and policy == "fifo":
            continue  # waits behind the blocker
        open_now = {
            n: [
                g.index
                for g in ordered
                if g.node == n and g.free and g.index not in taken and g.index not in kept
            ]
            for n in alive
        }
        enough = [n for n in alive if len(open_now[n]) >= task.n_gpus]
        if len(enough) >= task.n_nodes:
            best = sorted(enough, key=lambda n: (len(open_now[n]), n))[: task.n_nodes]
            ranks = tuple(sorted(best))
            ids = tuple(i for n in ranks for i in open_now[n][: task.n_gpus])
            taken |= set(ids)
            starts.append(Start(task.task_id, ids, ranks))
            continue
        if blocker is None:
            blocker = task
            if policy == "backfill":
                kept = set(target_set(task, pool)) & {i for ids in open_now.values() for i in ids}
    return tuple(starts)


@given(
    clusters(),
    queues(),
    st.sampled_from(POLICIES),
    st.none() | st.integers(0, 6),
    st.integers(0, 3),
    st.dictionaries(st.sampled_from(["n0", "n1", "n2", "n3"]), st.integers(0, 3)),
)
@settings(max_examples=600, deadline=None)
def test_plan_over_nodes_starts_what_a_reference_planner_starts(
    layout: tuple[list[GpuView], list[str]],
    queue: list[QueuedTask],
    policy: Policy,
    max_cpu: int | None,
    running_cpu: int,
    node_load: dict[str, int],
) -> None:
    pool, alive = layout
    want = reference_plan_over_nodes(
        queue,
        pool,
        policy=policy,
        nodes=alive,
        running_cpu_tasks=running_cpu,
        max_cpu_tasks=max_cpu,
        node_load=node_load,
    )
    for tasks in (queue, TaskQueue(queue)):
        p = plan(
            tasks,
            pool,
            policy=policy,
            nodes=alive,
            running_cpu_tasks=running_cpu,
            max_cpu_tasks=max_cpu,
            node_load=node_load,
        )
        assert p.starts == want  # same tasks, nodes, GPUs, in the same order


# ------------------------------------------------------------------ no starvation


def simulate(seed: int, policy: Policy) -> int:
    """Discrete ticks on 2-4 nodes; 1-GPU tasks arrive all the time, wide tasks and gangs now and
    then. The oldest blocked task starts no later than the tick at which every task then holding
    its target set has ended (nothing new may land there). Returns how many backfills happened."""
    rng = random.Random(seed)
    layout = {f"n{k}": rng.randint(1, 4) for k in range(rng.randint(2, 4))}
    pool0 = cluster(layout)
    alive = list(layout)
    queue: list[QueuedTask] = []
    running: dict[str, tuple[tuple[int, ...], int]] = {}
    seq = itertools.count()

    def submit(n_gpus: int, n_nodes: int = 1) -> None:
        k = next(seq)
        queue.append(QueuedTask(f"t{k}", n_gpus, 0, k, n_nodes))

    def shape() -> tuple[int, int]:
        n_nodes = rng.choice([1, 1, 2, len(layout)])
        fitting = sorted(layout.values(), reverse=True)[n_nodes - 1]
        return rng.randint(1, fitting), n_nodes

    watched: tuple[str, int] | None = None
    backfills = 0
    for now in itertools.count():
        if now >= 150 and not queue:
            break
        assert now < 20_000, f"seed {seed}: {len(queue)} tasks still queued at tick {now}"
        running = {k: v for k, v in running.items() if v[1] > now}
        if now < 150:
            for _ in range(rng.choice([0, 1, 1, 2])):
                submit(1)
            if rng.random() < 0.1:
                submit(*shape())
        holder = {i: k for k, (ids, _) in running.items() for i in ids}
        pool = [
            GpuView(
                g.index,
                allocated_to=(holder[g.index],) if g.index in holder else (),
                node=g.node,
                local_index=g.local_index,
            )
            for g in pool0
        ]
        p = plan(queue, pool, policy=policy, nodes=alive)
        ordered = order_queue(queue)
        by_id = {t.task_id: t for t in queue}
        for s in p.starts:
            assert not set(s.gpu_ids) & set(holder), "gave out a GPU that is in use"
            check_start(s, by_id[s.task_id], pool, alive)
            running[s.task_id] = (s.gpu_ids, now + rng.randint(1, 8))
            position = next(k for k, t in enumerate(ordered) if t.task_id == s.task_id)
            backfills += any(t.task_id in p.pending for t in ordered[:position])
        queue = [t for t in queue if t.task_id in p.pending]
        if watched is not None and watched[0] not in p.pending:
            watched = None
        if watched is not None:
            assert now < watched[1], f"seed {seed}: {watched[0]} starved past tick {watched[1]}"
        if watched is None and queue:
            oldest = order_queue(queue)[0]
            target = target_set(oldest, pool)
            ends = [end for k, (ids, end) in running.items() if set(ids) & set(target)]
            assert ends, "a task with its whole target set free should have started"
            watched = (oldest.task_id, max(ends))
    return backfills


@pytest.mark.parametrize("policy", POLICIES)
def test_no_task_starves_on_a_cluster(policy: Policy) -> None:
    backfills = sum(simulate(seed, policy) for seed in range(40))
    if policy == "fifo":
        assert backfills == 0
    else:
        assert backfills > 0


# ------------------------------------------------------------------ cost


class CountingQueue(TaskQueue):
    pulled = 0

    def tasks_needing(
        self, n_gpus: int, n_nodes: int = 1, gpu_mem: int = 0
    ) -> Iterator[QueuedTask]:
        for task in super().tasks_needing(n_gpus, n_nodes, gpu_mem):
            self.pulled += 1
            yield task

    def __iter__(self) -> Iterator[QueuedTask]:
        raise AssertionError("the plan walked the whole queue")


@pytest.mark.parametrize("policy", POLICIES)
def test_cost_with_gangs_stays_a_few_tasks_per_shape(policy: Policy) -> None:
    shapes = [(1, 1), (2, 2), (0, 2), (4, 1), (1, 3), (0, 1)]
    q = CountingQueue(
        QueuedTask(f"t{i}", n_gpus, 0, i, n_nodes)
        for i, (n_gpus, n_nodes) in zip(range(60_000), itertools.cycle(shapes))
    )
    busy = {f"g{i}": ("r",) for i in range(8) if i % 4 != 3}  # one free GPU per node
    pool = cluster({"node-a": 4, "node-b": 4}, **busy)
    p = plan(q, pool, policy=policy, nodes=AB, max_cpu_tasks=3)
    assert p.examined <= q.pulled <= p.examined + len(q.shapes())
    assert p.examined <= 12
    assert sum(1 for s in p.starts if not s.gpu_ids) == 3
    assert len([s for s in p.starts if s.gpu_ids]) <= 2
