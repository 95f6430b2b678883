"""The policy with GPU memory packing (tasks declaring gpu_mem share one GPU) and with topology
(multi-GPU sets chosen by their links): examples, then properties over random pools and queues."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ant_scheduler.core.policy import NOT_PLANNED, GpuView, Plan, Policy, QueuedTask, plan
from ant_scheduler.core.queue import TaskQueue
from ant_scheduler.core.topology import ACROSS, link_level, parse_fake_topology

G = 2**30
POLICIES: list[Policy] = ["fifo", "backfill", "fairshare"]
OWNERS = ["", "alice", "bob"]  # fair share goes by owner


def started(p: Plan) -> dict[str, tuple[int, ...]]:
    return {s.task_id: s.gpu_ids for s in p.starts}


def mem_task(task_id: str, gib: float, seq: int = 0) -> QueuedTask:
    return QueuedTask(task_id, 1, queue_seq=seq, gpu_mem=int(gib * G))


def gpus(n: int, gib: int = 80, **by_index: GpuView) -> list[GpuView]:
    return [by_index.get(f"g{i}", GpuView(i, mem_total=gib * G)) for i in range(n)]


# ------------------------------------------------------------------ examples: packing


def test_memory_tasks_share_one_gpu_while_their_memory_and_the_reserve_fit() -> None:
    q = [mem_task("a", 20, 0), mem_task("b", 20, 1), mem_task("c", 30, 2), mem_task("d", 20, 3)]
    p = plan(q, gpus(2), mem_reserve=4 * G)
    # 20 + 20 + 30 = 70 <= 80 - 4 on GPU 0; d (20) no longer fits there: GPU 1 opens.
    assert started(p) == {"a": (0,), "b": (0,), "c": (0,), "d": (1,)}
    placement = {s.task_id: s.placement for s in p.starts}
    assert placement["a"] == (
        "GPU 0 shared: declares 20 GiB, the first memory task there; 56 GiB left of 80 GiB "
        "(4 GiB reserve)"
    )
    assert placement["c"] == (
        "GPU 0 shared: declares 30 GiB, 40 GiB declared there already; 6 GiB left of 80 GiB "
        "(4 GiB reserve)"
    )


def test_a_memory_task_goes_where_it_fits_tightest() -> None:
    pool = [
        GpuView(0, allocated_to=("x",), shared=(("x", 30 * G),), mem_total=80 * G),
        GpuView(1, allocated_to=("y",), shared=(("y", 50 * G),), mem_total=80 * G),
        GpuView(2, mem_total=80 * G),
    ]
    assert started(plan([mem_task("a", 20)], pool)) == {"a": (1,)}  # 30 left there, 50 on GPU 0
    assert started(plan([mem_task("a", 40)], pool)) == {"a": (0,)}
    assert started(plan([mem_task("a", 60)], pool)) == {"a": (2,)}  # a free GPU opens


def test_whole_gpu_tasks_never_share_with_memory_tasks() -> None:
    pool = [
        GpuView(0, allocated_to=("w",), mem_total=80 * G),  # a whole-GPU task
        GpuView(1, allocated_to=("m",), shared=(("m", 1 * G),), mem_total=80 * G),
    ]
    p = plan([QueuedTask("whole", 1), mem_task("mem", 1, 1)], pool, policy="backfill")
    assert started(p) == {"mem": (1,)}
    assert p.reason(QueuedTask("whole", 1)) == (
        "needs 1 GPU; none free; GPU 0 in use by w; GPU 1 shared by memory tasks m; "
        "GPU 0 reserved for it"
    )
    # The memory task never goes onto GPU 0, however much room it has.
    p = plan([mem_task("mem", 1)], [pool[0]])
    assert started(p) == {}
    assert (
        p.reason(mem_task("mem", 1))
        == "needs 1 GiB of GPU memory; no GPU free or shared; GPU 0 in use by w"
    )


def test_reason_says_how_much_each_gpu_has_left() -> None:
    pool = [
        GpuView(0, allocated_to=("w",), mem_total=80 * G),
        GpuView(1, allocated_to=("m",), shared=(("m", 61 * G),), mem_total=80 * G),
    ]
    p = plan([mem_task("big", 20)], pool, mem_reserve=1 * G)
    assert p.reason(mem_task("big", 20)) == (
        "needs 20 GiB of GPU memory; GPU 1 has 18 GiB left (after the 1 GiB reserve); "
        "GPU 0 in use by w"
    )


def test_a_memory_task_larger_than_any_gpu_never_blocks_the_queue() -> None:
    q = [mem_task("huge", 100, 0), mem_task("small", 10, 1)]
    p = plan(q, gpus(1, gib=80), mem_reserve=2 * G)
    assert started(p) == {"small": (0,)}
    assert p.reason(q[0]) == (
        "needs 100 GiB of GPU memory but the largest usable GPU has 80 GiB "
        "(78 GiB after the 2 GiB reserve)"
    )


def test_gpus_busy_outside_ant_or_disabled_take_no_memory_task() -> None:
    pool = [
        GpuView(0, external="pid 1 bob", mem_total=80 * G),
        GpuView(1, enabled=False, mem_total=80 * G),
        GpuView(2, unavailable="NVML: lost", mem_total=80 * G),
        GpuView(3, mem_total=0),  # memory unknown
    ]
    p = plan([mem_task("m", 1)], pool)
    assert started(p) == {}


def test_fifo_stops_at_a_memory_task_that_does_not_fit() -> None:
    pool = [GpuView(0, allocated_to=("m",), shared=(("m", 70 * G),), mem_total=80 * G)]
    q = [mem_task("big", 20, 0), mem_task("small", 5, 1)]
    p = plan(q, pool, policy="fifo")
    assert started(p) == {}
    assert p.reason(q[1]) == "waiting behind big (fifo)"
    # Backfill lets the small one start: the big one's GPU is its reservation, though, so a
    # memory task may not join it (it drains) — it waits.
    p = plan(q, pool, policy="backfill")
    assert started(p) == {}
    assert p.reason(q[0]).endswith("GPU 0 reserved for it")


def test_backfill_keeps_the_blockers_target_free_of_new_memory_tasks() -> None:
    pool = [
        GpuView(0, allocated_to=("m",), shared=(("m", 10 * G),), mem_total=80 * G),
        GpuView(1, allocated_to=("w",), mem_total=80 * G),
    ]
    q = [QueuedTask("two", 2, queue_seq=0), mem_task("late", 10, 1)]
    p = plan(q, pool, policy="backfill")
    assert started(p) == {}  # GPU 0 is in two's target: it must drain
    p = plan([QueuedTask("one", 1, queue_seq=0), mem_task("late", 10, 1)], pool, policy="backfill")
    assert started(p) == {}  # one's target is GPU 0 (lowest): late would delay it


# ------------------------------------------------------------------ examples: topology


def test_a_multi_gpu_task_gets_one_nvlink_island_not_the_lowest_numbers() -> None:
    links = parse_fake_topology("nvlink=0-3,4-7; switch=0-1,2-3,4-5,6-7; socket=0-3,4-7", 8)
    pool = [GpuView(i, **vars(links[i])) for i in range(8)]
    busy = [
        GpuView(g.index, allocated_to=("x",), nvlink=g.nvlink, switch=g.switch, socket=g.socket)
        if g.index in (0, 5)
        else g
        for g in pool
    ]
    p = plan([QueuedTask("four", 4)], busy)
    assert started(p) == {"four": (1, 2, 3, 4)}  # no island nor socket has 4 free
    assert p.starts[0].placement == (
        "GPUs 1, 2, 3, 4: across CPU sockets 0, 1 (no closer set of 4 was free)"
    )
    p = plan([QueuedTask("three", 3)], busy)
    assert started(p) == {"three": (1, 2, 3)}
    assert p.starts[0].placement == "GPUs 1, 2, 3: one NVLink island 0"
    p = plan([QueuedTask("two", 2)], busy)
    # Islands 0 and 1 have 3 free each: the first; in it, the two GPUs on one PCIe switch.
    assert started(p) == {"two": (2, 3)}
    assert p.starts[0].placement == "GPUs 2, 3: one NVLink island 0"


def test_across_sockets_when_nothing_closer_is_free() -> None:
    links = parse_fake_topology("nvlink=0-1,2-3; socket=0-1,2-3", 4)
    pool = [
        GpuView(i, allocated_to=("x",) if i in (1, 3) else (), **vars(links[i])) for i in range(4)
    ]
    p = plan([QueuedTask("two", 2)], pool)
    assert started(p) == {"two": (0, 2)}
    assert (
        p.starts[0].placement == "GPUs 0, 2: across CPU sockets 0, 1 (no closer set of 2 was free)"
    )


def test_no_topology_keeps_the_lowest_numbered_set() -> None:
    pool = [GpuView(i) for i in range(4)]
    p = plan([QueuedTask("two", 2)], pool)
    assert started(p) == {"two": (0, 1)}
    assert p.starts[0].placement is None


def test_fake_topology_spec_errors() -> None:
    from ant_scheduler.core.topology import TopologySpecError

    for bad in ("island=0-3", "nvlink=0-9", "nvlink=3-1", "nvlink=0,0", "nvlink=a"):
        with pytest.raises(TopologySpecError):
            parse_fake_topology(bad, 8)


# ------------------------------------------------------------------ properties


@st.composite
def memory_pools(draw: st.DrawFn) -> list[GpuView]:
    pool = []
    for i in range(draw(st.integers(1, 6))):
        total = draw(st.sampled_from([0, 16, 24, 80])) * G
        kind = draw(st.sampled_from(["free", "free", "shared", "whole", "off", "outside"]))
        view = GpuView(i, mem_total=total)
        if kind == "shared" and total:
            shares = draw(st.lists(st.integers(1, 8), min_size=1, max_size=3))
            shared = tuple((f"s{i}_{k}", gib * G) for k, gib in enumerate(shares))
            view = GpuView(
                i, allocated_to=tuple(t for t, _ in shared), shared=shared, mem_total=total
            )
        elif kind == "whole":
            view = GpuView(i, allocated_to=(f"w{i}",), mem_total=total)
        elif kind == "off":
            view = GpuView(i, enabled=False, mem_total=total)
        elif kind == "outside":
            view = GpuView(i, external="pid 1", mem_total=total)
        pool.append(view)
    return pool


@st.composite
def mixed_queues(draw: st.DrawFn) -> list[QueuedTask]:
    out = []
    for i in range(draw(st.integers(0, 12))):
        if draw(st.booleans()):
            out.append(
                QueuedTask(
                    f"t{i}",
                    1,
                    priority=draw(st.integers(0, 1)),
                    queue_seq=i,
                    gpu_mem=draw(st.sampled_from([1, 4, 10, 20, 40])) * G,
                    owner=draw(st.sampled_from(OWNERS)),
                )
            )
        else:
            out.append(
                QueuedTask(
                    f"t{i}",
                    draw(st.integers(0, 3)),
                    priority=draw(st.integers(0, 1)),
                    queue_seq=i,
                    owner=draw(st.sampled_from(OWNERS)),
                )
            )
    return out


@given(mixed_queues(), memory_pools(), st.sampled_from(POLICIES), st.sampled_from([0, G, 3 * G]))
@settings(max_examples=500, deadline=None)
def test_no_gpu_is_over_committed_and_whole_gpu_tasks_never_share(
    queue: list[QueuedTask], pool: list[GpuView], policy: Policy, reserve: int
) -> None:
    p = plan(queue, pool, policy=policy, mem_reserve=reserve)
    by_id = {t.task_id: t for t in queue}
    holders: dict[int, list[tuple[str, int]]] = {
        g.index: [(t, 0) for t in g.allocated_to if t not in g.shared_by] for g in pool
    }
    declared = {g.index: list(g.shared) for g in pool}
    for start in p.starts:
        task = by_id[start.task_id]
        for index in start.gpu_ids:
            if task.gpu_mem:
                declared[index].append((task.task_id, task.gpu_mem))
            else:
                holders[index].append((task.task_id, 0))
    for g in pool:
        new = [s for s in p.starts if g.index in s.gpu_ids]
        mem_here = declared[g.index]
        whole_here = holders[g.index]
        # Whole-GPU tasks never share, with memory tasks or each other.
        assert not (mem_here and whole_here)
        assert len(whole_here) <= 1
        if any(by_id[s.task_id].gpu_mem for s in new):
            # Every memory task put here fits with the reserve, on a usable GPU nobody outside uses.
            assert sum(n for _, n in mem_here) + reserve <= g.mem_total
            assert g.usable and g.external is None
        if new:
            assert g.usable


@given(mixed_queues(), memory_pools(), st.sampled_from(POLICIES))
@settings(max_examples=300, deadline=None)
def test_every_waiting_memory_task_has_a_reason(
    queue: list[QueuedTask], pool: list[GpuView], policy: Policy
) -> None:
    p = plan(queue, pool, policy=policy, mem_reserve=G)
    ids = {s.task_id for s in p.starts}
    for task in queue:
        reason = p.reason(task)
        assert (reason is None) == (task.task_id in ids)
        if reason is not None and task.gpu_mem:
            assert reason == NOT_PLANNED or "GiB" in reason or "waiting behind" in reason


@st.composite
def linked_pools(draw: st.DrawFn) -> tuple[list[GpuView], int]:
    n = draw(st.integers(2, 8))
    views = []
    for i in range(n):
        views.append(
            GpuView(
                i,
                allocated_to=("x",) if draw(st.booleans()) else (),
                nvlink=draw(st.sampled_from([None, 0, 1, 2])),
                switch=draw(st.sampled_from([None, 0, 1, 2, 3])),
                socket=draw(st.sampled_from([None, 0, 1])),
            )
        )
    return views, draw(st.integers(1, n))


@given(linked_pools())
@settings(max_examples=500, deadline=None)
def test_the_chosen_set_is_never_worse_linked_than_a_free_one(
    case: tuple[list[GpuView], int],
) -> None:
    pool, n = case
    free = [g for g in pool if g.free]
    p = plan([QueuedTask("t", n)], pool)
    if len(free) < n:
        assert p.starts == ()
        return
    (start,) = p.starts
    by_index = {g.index: g for g in pool}
    chosen = [by_index[i] for i in start.gpu_ids]
    assert all(g.free for g in chosen) and len(set(start.gpu_ids)) == n
    best = min(link_level(c) for c in itertools.combinations(free, n))
    assert link_level(chosen) == best
    if (
        best == ACROSS
        and n > 1
        and any(g.socket is not None or g.nvlink is not None or g.switch is not None for g in pool)
    ):
        assert start.placement is not None and "across" in start.placement


def test_no_memory_task_starves_while_small_ones_keep_arriving() -> None:
    """A 60 GiB task behind a stream of 10 GiB tasks on one 80 GiB GPU: under backfill its
    reservation lets the GPU drain, and it starts."""
    rng = random.Random(7)
    running: dict[str, tuple[int, int]] = {}  # task -> (declared, ends at)
    queue = TaskQueue([mem_task("small0", 10, 0), mem_task("big", 60, 1)])
    seq = 2
    for tick in range(200):
        for task_id, (_, end) in list(running.items()):
            if end <= tick:
                del running[task_id]
        if tick < 150 and rng.random() < 0.8:
            queue.add(mem_task(f"small{seq}", 10, seq))
            seq += 1
        shared = tuple((t, d) for t, (d, _) in running.items())
        pool = [
            GpuView(0, allocated_to=tuple(t for t, _ in shared), shared=shared, mem_total=80 * G)
        ]
        p = plan(queue, pool, policy="backfill")
        for start in p.starts:
            task = queue.remove(start.task_id)
            running[task.task_id] = (task.gpu_mem, tick + rng.randint(1, 6))
        if "big" in running:
            return
    raise AssertionError("the 60 GiB task never started")


def test_a_pass_over_a_huge_queue_of_memory_tasks_stays_cheap() -> None:
    sizes = [1, 2, 5, 10, 20]
    queue = TaskQueue(mem_task(f"t{i}", sizes[i % len(sizes)], i) for i in range(100_000))
    full = [GpuView(i, allocated_to=("w",), mem_total=80 * G) for i in range(8)]
    for policy in POLICIES:
        p = plan(queue, full, policy=policy)
        assert p.starts == () and p.examined <= len(sizes)
    shared = [GpuView(0, allocated_to=("m",), shared=(("m", 75 * G),), mem_total=80 * G)]
    p = plan(queue, shared, policy="backfill")
    # 1 and 2 GiB fit; the 5 GiB task is the blocker, its GPU drains: nothing more is looked at
    # but the head of each other size.
    assert len(p.starts) == 2 and p.examined <= 2 + len(sizes)
