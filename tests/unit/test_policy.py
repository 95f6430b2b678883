from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ant_scheduler.core import policy as policy_module
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
WHO = "pid 4242 alice python x.py"
ARRIVALS_END = 150  # simulation tick after which no new task arrives


def started(p: Plan) -> dict[str, tuple[int, ...]]:
    return {s.task_id: s.gpu_ids for s in p.starts}


def pool_of(n: int, **by_index: GpuView) -> list[GpuView]:
    """n plain free GPUs, with the ones named g0, g1, ... replaced."""
    return [by_index.get(f"g{i}", GpuView(i)) for i in range(n)]


# ------------------------------------------------------------------ order


def test_order_is_priority_then_queue_seq_then_id() -> None:
    q = [
        QueuedTask("a", 1, priority=0, queue_seq=2),
        QueuedTask("b", 1, priority=5, queue_seq=9),
        QueuedTask("d", 1, priority=0, queue_seq=1),
        QueuedTask("c", 1, priority=0, queue_seq=1),
        QueuedTask("e", 1, priority=-1, queue_seq=0),
    ]
    assert [t.task_id for t in order_queue(q)] == ["b", "c", "d", "a", "e"]
    p = plan(q, pool_of(1))
    assert started(p) == {"b": (0,)}


def test_promote_to_top_is_top_priority_and_lowest_seq() -> None:
    q = [QueuedTask("a", 1, 3, 0), QueuedTask("b", 1, 0, 1), QueuedTask("last", 1, 0, 2)]
    promoted = dataclasses.replace(
        q[2],
        priority=max(t.priority for t in q),
        queue_seq=min(t.queue_seq for t in q) - 1,
    )
    assert [t.task_id for t in order_queue([*q[:2], promoted])] == ["last", "a", "b"]
    assert started(plan([*q[:2], promoted], pool_of(1))) == {"last": (0,)}


# ------------------------------------------------------------------ GPU choice


def test_only_free_gpus_are_given_out() -> None:
    pool = [
        GpuView(0, enabled=False),
        GpuView(1, allocated_to=("r",)),
        GpuView(2, external="pid 1 x"),
        GpuView(3, unavailable="NVML error"),
        GpuView(4),
    ]
    for policy in POLICIES:
        assert plan([QueuedTask("a", 1)], pool, policy=policy).starts == (Start("a", (4,)),)
        p = plan([QueuedTask("a", 2)], pool, policy=policy)
        assert p.starts == ()
        assert p.pending["a"].startswith(
            "needs 2 GPUs; 1 free (4); GPU 0 disabled; GPU 1 in use by r; "
            "GPU 2 busy outside ANT (pid 1 x); GPU 3 unavailable (NVML error)"
        )


def test_multi_gpu_task_gets_lowest_numbered_free_set() -> None:
    pool = [
        GpuView(7),
        GpuView(2, allocated_to=("r",)),
        GpuView(5),
        GpuView(0),
        GpuView(3),
    ]
    p = plan([QueuedTask("a", 3), QueuedTask("b", 1)], pool)
    assert p.starts == (Start("a", (0, 3, 5)), Start("b", (7,)))
    assert p.pending == {}


# ------------------------------------------------------------------ CPU tasks


@pytest.mark.parametrize("policy", POLICIES)
def test_cpu_tasks_never_wait_behind_gpu_tasks(policy: Policy) -> None:
    pool = pool_of(2, g0=GpuView(0, allocated_to=("r",)))
    q = [QueuedTask("gpu", 2, 0, 0), QueuedTask("cpu1", 0, 0, 1), QueuedTask("cpu2", 0, 0, 2)]
    p = plan(q, pool, policy=policy)
    assert p.starts == (Start("cpu1", ()), Start("cpu2", ()))
    assert set(p.pending) == {"gpu"}
    # No GPUs at all: CPU tasks still run.
    p = plan([QueuedTask("gpu", 1, 0, 0), QueuedTask("cpu", 0, 0, 1)], [], policy=policy)
    assert p.starts == (Start("cpu", ()),)


def test_cpu_task_limit() -> None:
    q = [QueuedTask(f"c{i}", 0, 0, i) for i in range(3)]
    p = plan(q, [], running_cpu_tasks=3, max_cpu_tasks=4)
    assert started(p) == {"c0": ()}
    assert p.pending == {
        "c1": "CPU task limit reached (4 of 4 running)",
        "c2": "CPU task limit reached (4 of 4 running)",
    }
    # The limit was lowered below what already runs: nothing starts, the text says so.
    p = plan(q[:1], [], running_cpu_tasks=5, max_cpu_tasks=4)
    assert p.pending == {"c0": "CPU task limit reached (5 of 4 running)"}
    many = [QueuedTask(f"c{i}", 0, 0, i) for i in range(50)]
    assert len(plan(many, [], running_cpu_tasks=100).starts) == 50


def test_cpu_tasks_take_the_limit_in_queue_order() -> None:
    q = [QueuedTask("low", 0, 0, 0), QueuedTask("high", 0, 1, 5)]
    p = plan(q, [], max_cpu_tasks=1)
    assert started(p) == {"high": ()}
    assert p.pending == {"low": "CPU task limit reached (1 of 1 running)"}


# ------------------------------------------------------------------ tasks that can never fit


@pytest.mark.parametrize(
    ("pool", "n", "reason"),
    [
        (pool_of(4), 6, "needs 6 GPUs but ANT has only 4"),
        ([], 1, "needs 1 GPU but ANT has no GPUs"),
        (
            pool_of(5, g2=GpuView(2, enabled=False)),
            6,
            "needs 6 GPUs but only 4 are enabled (GPU 2 disabled)",
        ),
        (
            pool_of(
                4,
                g0=GpuView(0, enabled=False),
                g1=GpuView(1, enabled=False),
                g3=GpuView(3, unavailable="NVML error"),
            ),
            2,
            "needs 2 GPUs but only 1 is usable "
            "(GPUs 0, 1 disabled; GPU 3 unavailable (NVML error))",
        ),
        (
            pool_of(2, g0=GpuView(0, enabled=False), g1=GpuView(1, enabled=False)),
            1,
            "needs 1 GPU but no GPU is enabled (GPUs 0, 1 disabled)",
        ),
        (
            # A disabled GPU that fails too is reported as disabled: that is what the user can fix.
            pool_of(1, g0=GpuView(0, enabled=False, unavailable="gone")),
            1,
            "needs 1 GPU but no GPU is enabled (GPU 0 disabled)",
        ),
        (
            pool_of(1, g0=GpuView(0, unavailable="GPU has fallen off the bus")),
            1,
            "needs 1 GPU but no GPU is usable (GPU 0 unavailable (GPU has fallen off the bus))",
        ),
    ],
)
def test_never_fitting_task_reason(pool: list[GpuView], n: int, reason: str) -> None:
    for policy in POLICIES:
        assert plan([QueuedTask("big", n)], pool, policy=policy).pending == {"big": reason}


def test_busy_and_outside_gpus_count_as_usable_later() -> None:
    pool = [
        GpuView(0, external="pid 1 a"),
        GpuView(1, external="pid 2 b"),
        GpuView(2, allocated_to=("r",)),
    ]
    p = plan([QueuedTask("t", 3)], pool)
    assert p.pending == {
        "t": "needs 3 GPUs; none free; GPU 0 busy outside ANT (pid 1 a); "
        "GPU 1 busy outside ANT (pid 2 b); GPU 2 in use by r"
    }


def test_never_fitting_task_blocks_nobody() -> None:
    pool = pool_of(3, g0=GpuView(0, allocated_to=("r",)), g1=GpuView(1, allocated_to=("r",)))
    q = [QueuedTask("huge", 5, 0, 0), QueuedTask("two", 2, 0, 1), QueuedTask("one", 1, 0, 2)]
    fifo = plan(q, pool, policy="fifo")
    assert fifo.starts == ()
    assert fifo.pending["two"] == "needs 2 GPUs; 1 free (2); GPUs 0, 1 in use by r"
    assert fifo.pending["one"] == "waiting behind two (fifo)"
    back = plan(q, pool, policy="backfill")
    assert back.starts == (Start("one", (2,)),)
    assert back.pending["two"].endswith("; GPUs 0, 1 reserved for it")
    assert back.pending["huge"] == "needs 5 GPUs but ANT has only 3"
    assert started(plan([*q[:1], QueuedTask("x", 1, 0, 1)], pool)) == {"x": (2,)}


# ------------------------------------------------------------------ fifo


def test_fifo_blocks_everything_after_the_first_task_that_does_not_fit() -> None:
    pool = pool_of(
        5,
        g0=GpuView(0, enabled=False),
        g2=GpuView(2, external=WHO),
        g4=GpuView(4, allocated_to=("r",)),
    )
    p = plan([QueuedTask("wide", 3)], pool)
    assert p.pending == {
        "wide": f"needs 3 GPUs; 2 free (1, 3); GPU 0 disabled; GPU 2 busy outside ANT ({WHO}); "
        "GPU 4 in use by r"
    }
    q = [QueuedTask("a", 1, 0, 0), QueuedTask("wide", 3, 0, 1), QueuedTask("small", 1, 0, 2)]
    p = plan(q, pool)
    assert p.starts == (Start("a", (1,)),)
    assert p.pending == {
        # GPU 1 goes to "a" in this very plan; the reason already says where it went.
        "wide": f"needs 3 GPUs; 1 free (3); GPU 0 disabled; GPU 1 in use by a; "
        f"GPU 2 busy outside ANT ({WHO}); GPU 4 in use by r",
        "small": "waiting behind wide (fifo)",
    }


def test_reason_groups_gpus_with_the_same_cause() -> None:
    pool = [GpuView(i, allocated_to=("big",)) for i in range(4)]
    p = plan([QueuedTask("t", 1)], pool)
    assert p.pending == {"t": "needs 1 GPU; none free; GPUs 0, 1, 2, 3 in use by big"}
    pool = [GpuView(0, allocated_to=("a", "b"))]
    assert plan([QueuedTask("t", 1)], pool).pending == {
        "t": "needs 1 GPU; none free; GPU 0 in use by a, b"
    }


# ------------------------------------------------------------------ backfill


def test_backfill_uses_gpus_outside_the_reservation_and_keeps_the_rest() -> None:
    pool = [GpuView(i, allocated_to=(f"r{i}",)) for i in range(3)] + [GpuView(3)]
    q = [QueuedTask("wide", 2, 0, 0), QueuedTask("narrow", 1, 0, 1)]
    fifo = plan(q, pool, policy="fifo")
    assert fifo.starts == ()
    assert fifo.pending["narrow"] == "waiting behind wide (fifo)"
    back = plan(q, pool, policy="backfill")
    assert back.starts == (Start("narrow", (3,)),)
    # Reasons describe the end of the pass: GPU 3 went to "narrow", backfilled after "wide".
    assert back.pending == {
        "wide": "needs 2 GPUs; none free; GPU 0 in use by r0; GPU 1 in use by r1; "
        "GPU 2 in use by r2; GPU 3 in use by narrow; GPUs 0, 1 reserved for it"
    }
    # r0 ends: GPU 0 is kept for "wide"; a newcomer may not take it.
    pool = [GpuView(0), GpuView(1, allocated_to=("r1",)), GpuView(2, allocated_to=("r2",))]
    pool.append(GpuView(3, allocated_to=("narrow",)))
    back = plan([q[0], QueuedTask("late", 1, 0, 2)], pool, policy="backfill")
    assert back.starts == ()
    assert back.pending["late"] == (
        "needs 1 GPU; none free; GPU 0 kept for older task wide; GPU 1 in use by r1; "
        "GPU 2 in use by r2; GPU 3 in use by narrow"
    )
    # r1 ends too: "wide" starts on its reserved set before the newcomer.
    pool[1] = GpuView(1)
    back = plan([q[0], QueuedTask("late", 1, 0, 2)], pool, policy="backfill")
    assert back.starts == (Start("wide", (0, 1)),)


def test_only_the_oldest_blocked_task_holds_a_reservation() -> None:
    pool = [GpuView(i, allocated_to=("r",) if i in (0, 1, 3, 4) else ()) for i in range(7)]
    q = [QueuedTask("B", 4, 0, 0), QueuedTask("C", 6, 0, 1), QueuedTask("D", 2, 0, 2)]
    p = plan(q, pool, policy="backfill")
    # Had C a reservation too (GPUs 0-5), D could not take GPU 5.
    assert p.starts == (Start("D", (5, 6)),)
    # Reasons describe the end of the pass, when D holds GPUs 5 and 6.
    assert p.pending == {
        "B": "needs 4 GPUs; 1 free (2); GPUs 0, 1, 3, 4 in use by r; GPUs 5, 6 in use by D; "
        "GPUs 0, 1, 2, 3 reserved for it",
        "C": "needs 6 GPUs; none free; GPUs 0, 1, 3, 4 in use by r; "
        "GPU 2 kept for older task B; GPUs 5, 6 in use by D",
    }


def test_reservation_skips_gpus_busy_outside_ant_when_it_can() -> None:
    pool = [
        GpuView(0, external="pid 9 eve"),
        GpuView(1, allocated_to=("r",)),
        GpuView(2),
        GpuView(3, allocated_to=("s",)),
        GpuView(4),
        GpuView(5),
    ]
    q = [QueuedTask("B", 4, 0, 0), QueuedTask("x", 1, 0, 1)]
    p = plan(q, pool, policy="backfill")
    # Target set {1, 2, 3, 4}: GPU 5 is the only free one outside it.
    assert p.starts == (Start("x", (5,)),)
    assert p.pending["B"].endswith("; GPUs 1, 2, 3, 4 reserved for it")


def test_reservation_takes_gpus_busy_outside_ant_when_it_must() -> None:
    pool = [
        GpuView(0, external="pid 9 eve"),
        GpuView(1),
        GpuView(2, external="pid 8 bob"),
        GpuView(3),
    ]
    q = [QueuedTask("B", 3, 0, 0), QueuedTask("x", 1, 0, 1)]
    p = plan(q, pool, policy="backfill")
    assert p.starts == ()
    assert p.pending == {
        "B": "needs 3 GPUs; 2 free (1, 3); GPU 0 busy outside ANT (pid 9 eve); "
        "GPU 2 busy outside ANT (pid 8 bob); GPUs 0, 1, 3 reserved for it",
        "x": "needs 1 GPU; none free; GPU 0 busy outside ANT (pid 9 eve); "
        "GPUs 1, 3 kept for older task B; GPU 2 busy outside ANT (pid 8 bob)",
    }


# ------------------------------------------------------------------ properties


@st.composite
def gpu_pools(draw: st.DrawFn) -> list[GpuView]:
    """0-8 GPUs with scattered indices, in no particular order, mostly free."""
    indices = draw(st.lists(st.integers(0, 15), unique=True, max_size=8))
    return [
        GpuView(
            i,
            enabled=draw(st.sampled_from([True, True, True, False])),
            allocated_to=draw(st.sampled_from([(), (), (), ("r1",), ("r2", "r3")])),
            external=draw(st.sampled_from([None, None, None, "pid 7 bob python y.py"])),
            unavailable=draw(st.sampled_from([None, None, None, None, "NVML error"])),
        )
        for i in indices
    ]


@st.composite
def queues(draw: st.DrawFn) -> list[QueuedTask]:
    """0-20 tasks, 0-5 GPUs each; queue_seq may tie so task_id must break ties."""
    return [
        QueuedTask(
            f"t{k}",
            draw(st.integers(0, 5)),
            draw(st.integers(-2, 2)),
            draw(st.integers(0, 30)),
        )
        for k in range(draw(st.integers(0, 20)))
    ]


def usable_count(pool: list[GpuView]) -> int:
    return sum(1 for g in pool if g.enabled and g.unavailable is None)


def free_ids(pool: list[GpuView]) -> list[int]:
    return sorted(
        g.index
        for g in pool
        if g.enabled and g.unavailable is None and not g.allocated_to and g.external is None
    )


def possible_gpu_tasks(queue: list[QueuedTask], pool: list[GpuView]) -> list[QueuedTask]:
    """GPU tasks that could run some day, in queue order."""
    return [t for t in order_queue(queue) if 0 < t.n_gpus <= usable_count(pool)]


def oldest_blocked(p: Plan, queue: list[QueuedTask], pool: list[GpuView]) -> QueuedTask | None:
    return next((t for t in possible_gpu_tasks(queue, pool) if t.task_id in p.pending), None)


def target_set(n: int, pool: list[GpuView]) -> list[int]:
    """The rule from the brief, restated: lowest n usable not busy outside, then outside ones."""
    ordered = sorted(pool, key=lambda g: g.index)
    clean = [g.index for g in ordered if g.enabled and g.unavailable is None and not g.external]
    outside = [g.index for g in ordered if g.enabled and g.unavailable is None and g.external]
    return sorted(clean[:n] + outside[: max(0, n - len(clean))])


@given(
    queues(),
    gpu_pools(),
    st.sampled_from(POLICIES),
    st.integers(0, 5),
    st.none() | st.integers(1, 6),
)
@settings(max_examples=400, deadline=None)
def test_plan_invariants(
    queue: list[QueuedTask],
    pool: list[GpuView],
    policy: Policy,
    running_cpu: int,
    max_cpu: int | None,
) -> None:
    p = plan(queue, pool, policy=policy, running_cpu_tasks=running_cpu, max_cpu_tasks=max_cpu)
    by_id = {t.task_id: t for t in queue}
    given_out = [i for s in p.starts for i in s.gpu_ids]
    assert len(given_out) == len(set(given_out)), "a GPU was assigned twice"
    assert set(given_out) <= set(free_ids(pool)), "a GPU that is not free was assigned"
    ids = [s.task_id for s in p.starts]
    assert len(ids) == len(set(ids)), "a task was started twice"
    assert set(ids) | set(p.pending) == set(by_id)
    assert not set(ids) & set(p.pending)
    assert all(isinstance(r, str) and r for r in p.pending.values())
    for s in p.starts:
        assert len(s.gpu_ids) == by_id[s.task_id].n_gpus
        assert list(s.gpu_ids) == sorted(s.gpu_ids)
    order = [t.task_id for t in order_queue(queue)]
    assert ids == [i for i in order if i in set(ids)], "starts are not in queue order"

    cpu_tasks = [t for t in order_queue(queue) if t.n_gpus == 0]
    cpu_started = [t for t in cpu_tasks if t.task_id in set(ids)]
    assert cpu_started == cpu_tasks[: len(cpu_started)], "CPU tasks started out of order"
    if max_cpu is not None:
        assert running_cpu + len(cpu_started) <= max(max_cpu, running_cpu)
    for t in cpu_tasks[len(cpu_started) :]:
        assert max_cpu is not None
        running_now = running_cpu + len(cpu_started)
        assert running_now >= max_cpu
        assert (
            p.pending[t.task_id] == f"CPU task limit reached ({running_now} of {max_cpu} running)"
        )

    for t in queue:
        if t.n_gpus > usable_count(pool):
            assert p.pending[t.task_id].startswith(f"needs {t.n_gpus} GPU")
            assert " but " in p.pending[t.task_id]


@given(queues(), gpu_pools())
@settings(max_examples=400, deadline=None)
def test_fifo_starts_a_prefix_and_stops_at_a_task_that_does_not_fit(
    queue: list[QueuedTask], pool: list[GpuView]
) -> None:
    p = plan(queue, pool, policy="fifo")
    gpu_tasks = possible_gpu_tasks(queue, pool)
    n_started = sum(1 for t in gpu_tasks if t.task_id not in p.pending)
    assert all(t.task_id not in p.pending for t in gpu_tasks[:n_started])
    assert all(t.task_id in p.pending for t in gpu_tasks[n_started:])
    if n_started < len(gpu_tasks):
        blocker, *rest = gpu_tasks[n_started:]
        left = len(free_ids(pool)) - sum(len(s.gpu_ids) for s in p.starts)
        assert blocker.n_gpus > left
        assert p.pending[blocker.task_id].startswith(f"needs {blocker.n_gpus} GPU")
        for t in rest:
            assert p.pending[t.task_id] == f"waiting behind {blocker.task_id} (fifo)"


@given(queues(), gpu_pools())
@settings(max_examples=400, deadline=None)
def test_backfill_starts_everything_fifo_starts_on_the_same_gpus(
    queue: list[QueuedTask], pool: list[GpuView]
) -> None:
    # Both walk the queue identically up to the first blocked task, so this really holds.
    fifo = started(plan(queue, pool, policy="fifo"))
    back = started(plan(queue, pool, policy="backfill"))
    assert fifo.items() <= back.items()


@given(queues(), gpu_pools())
@settings(max_examples=400, deadline=None)
def test_backfill_keeps_the_oldest_blocked_tasks_target_set(
    queue: list[QueuedTask], pool: list[GpuView]
) -> None:
    p = plan(queue, pool, policy="backfill")
    blocked = oldest_blocked(p, queue, pool)
    if blocked is None:
        assert all(t.task_id not in p.pending for t in possible_gpu_tasks(queue, pool))
        return
    target = target_set(blocked.n_gpus, pool)
    order = [t.task_id for t in order_queue(queue)]
    later = set(order[order.index(blocked.task_id) + 1 :])
    for s in p.starts:
        if s.task_id in later:
            assert not set(s.gpu_ids) & set(target), f"{s.task_id} got a GPU kept for {blocked}"
    assert p.pending[blocked.task_id].endswith(
        f"{'GPU' if len(target) == 1 else 'GPUs'} {', '.join(map(str, target))} reserved for it"
    )
    # Nothing that waits could have used what is left over (outside the reservation).
    leftover = set(free_ids(pool)) - {i for s in p.starts for i in s.gpu_ids}
    assert blocked.n_gpus > len(leftover)
    for t in possible_gpu_tasks(queue, pool):
        if t.task_id in later and t.task_id in p.pending:
            assert t.n_gpus > len(leftover - set(target))
    # The reason of a later waiting task names the kept GPUs exactly when some are kept.
    earlier_taken = {i for s in p.starts if s.task_id not in later for i in s.gpu_ids}
    kept = (set(target) & set(free_ids(pool))) - earlier_taken
    for t in possible_gpu_tasks(queue, pool):
        if t.task_id in later and t.task_id in p.pending:
            assert ("kept for older task " + blocked.task_id in p.pending[t.task_id]) == bool(kept)


@given(queues(), gpu_pools(), st.sampled_from(POLICIES))
@settings(max_examples=300, deadline=None)
def test_gpus_go_to_the_lowest_numbered_available_set(
    queue: list[QueuedTask], pool: list[GpuView], policy: Policy
) -> None:
    p = plan(queue, pool, policy=policy)
    blocked = oldest_blocked(p, queue, pool)
    order = [t.task_id for t in order_queue(queue)]
    reserved: set[int] = set()
    if blocked is not None and policy == "backfill":
        reserved = set(target_set(blocked.n_gpus, pool))
    available = free_ids(pool)
    for s in p.starts:
        if not s.gpu_ids:
            continue
        after_blocked = blocked is not None and order.index(s.task_id) > order.index(
            blocked.task_id
        )
        candidates = [i for i in available if not (after_blocked and i in reserved)]
        assert s.gpu_ids == tuple(candidates[: len(s.gpu_ids)])
        available = [i for i in available if i not in s.gpu_ids]


@given(queues(), gpu_pools(), st.sampled_from(POLICIES), st.randoms(use_true_random=False))
@settings(max_examples=300, deadline=None)
def test_plan_does_not_depend_on_input_order(
    queue: list[QueuedTask], pool: list[GpuView], policy: Policy, rng: random.Random
) -> None:
    shuffled_queue, shuffled_pool = queue[:], pool[:]
    rng.shuffle(shuffled_queue)
    rng.shuffle(shuffled_pool)
    a = plan(queue, pool, policy=policy, max_cpu_tasks=2)
    b = plan(shuffled_queue, shuffled_pool, policy=policy, max_cpu_tasks=2)
    assert a.starts == b.starts
    assert dict(a.pending) == dict(b.pending)


@given(queues(), gpu_pools(), st.sampled_from(POLICIES))
@settings(max_examples=300, deadline=None)
def test_cpu_and_never_fitting_tasks_do_not_change_gpu_starts(
    queue: list[QueuedTask], pool: list[GpuView], policy: Policy
) -> None:
    full = plan(queue, pool, policy=policy, max_cpu_tasks=2)
    gpu_only = [t for t in queue if 0 < t.n_gpus <= usable_count(pool)]
    cpu_only = [t for t in queue if t.n_gpus == 0]
    gpu_starts = tuple(s for s in full.starts if s.gpu_ids)
    cpu_starts = tuple(s for s in full.starts if not s.gpu_ids)
    assert plan(gpu_only, pool, policy=policy).starts == gpu_starts
    assert plan(cpu_only, pool, policy=policy, max_cpu_tasks=2).starts == cpu_starts


# ------------------------------------------------------------------ simulation


def simulate(seed: int, policy: Policy) -> int:
    """Run a fake machine in discrete ticks with 1-GPU tasks arriving all the time.

    Checks the no-starvation bound: once a task is the oldest blocked one, it starts no later than
    the tick at which every task then holding its target set has ended (nothing new may land
    there). Returns how many tasks started ahead of an older waiting GPU task (backfills).
    """
    rng = random.Random(seed)
    n = rng.randint(2, 6)
    disabled = {rng.randrange(n)} if rng.random() < 0.3 else set()
    usable = n - len(disabled)
    queue: list[QueuedTask] = []
    running: dict[str, tuple[tuple[int, ...], int]] = {}  # id -> (GPUs, tick it ends)
    seq = 0

    def submit(n_gpus: int) -> None:
        nonlocal seq
        queue.append(QueuedTask(f"t{seq}", n_gpus, 0, seq))
        seq += 1

    for _ in range(3):
        submit(rng.randint(1, usable))
    watched: tuple[str, int] | None = None  # (oldest blocked task, tick by which it must start)
    backfills = 0
    for now in itertools.count():
        if now >= ARRIVALS_END and not queue:
            break
        # All work is finite, so the queue must drain after the arrivals stop.
        assert now < 20_000, f"seed {seed}: {len(queue)} tasks still queued at tick {now}"
        running = {k: v for k, v in running.items() if v[1] > now}
        if now < ARRIVALS_END:
            for _ in range(rng.choice([0, 1, 1, 2])):
                submit(1)
            if rng.random() < 0.08:
                submit(rng.randint(1, usable))
        holder = {i: k for k, (ids, _) in running.items() for i in ids}
        pool = [
            GpuView(i, enabled=i not in disabled, allocated_to=(holder[i],) if i in holder else ())
            for i in range(n)
        ]
        p = plan(queue, pool, policy=policy)
        ordered = order_queue(queue)
        for s in p.starts:
            assert not set(s.gpu_ids) & set(holder), "gave out a GPU that is in use"
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
            target = target_set(oldest.n_gpus, pool)
            ends = [end for k, (ids, end) in running.items() if set(ids) & set(target)]
            assert ends, "a task with its whole target set free should have started"
            watched = (oldest.task_id, max(ends))
    return backfills


@pytest.mark.parametrize("policy", POLICIES)
def test_no_task_starves_while_one_gpu_tasks_keep_arriving(policy: Policy) -> None:
    backfills = sum(simulate(seed, policy) for seed in range(40))
    if policy == "fifo":
        assert backfills == 0
    else:
        assert backfills > 0  # the simulation does exercise backfilling


# ------------------------------------------------------------------ the reference algorithm


def reference_plan(
    queue: list[QueuedTask],
    gpus: list[GpuView],
    *,
    policy: Policy = "fifo",
    running_cpu_tasks: int = 0,
    max_cpu_tasks: int | None = None,
) -> tuple[tuple[Start, ...], dict[str, str]]:
    """The policy as it was before TaskQueue: sort the whole queue, walk all of it, give every
    waiting task its reason as it is met. Kept to show the early-exiting plan decides the same.
    Its decisions are its own; only the wording of the reasons comes from the policy module."""
    pool = sorted(gpus, key=lambda g: g.index)
    n_usable = sum(1 for g in pool if g.usable)
    starts: list[Start] = []
    pending: dict[str, str] = {}
    cpu_running = running_cpu_tasks
    taken: dict[int, str] = {}
    kept: dict[int, str] = {}
    blocker: str | None = None
    for task in sorted(queue, key=lambda t: (-t.priority, t.queue_seq, t.task_id)):
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
            pending[task.task_id] = policy_module._never_fits_reason(task.n_gpus, pool)
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
        reason = policy_module._waiting_reason(task.n_gpus, pool, open_ids, taken, kept)
        if blocker is None:
            blocker = task.task_id
            if policy == "backfill":
                target = target_set(task.n_gpus, pool)
                kept = {i: task.task_id for i in target if i in open_ids}
                reason += f"; {policy_module._gpu_label(target)} reserved for it"
        pending[task.task_id] = reason
    return tuple(starts), pending


@st.composite
def long_queues(draw: st.DrawFn) -> list[QueuedTask]:
    """0-60 tasks, 0-9 GPUs each (more than most pools have), many ties."""
    return [
        QueuedTask(
            f"t{k}",
            draw(st.sampled_from([0, 0, 1, 1, 1, 2, 2, 3, 4, 5, 8, 9])),
            draw(st.integers(-2, 2)),
            draw(st.integers(0, 40)),
        )
        for k in range(draw(st.integers(0, 60)))
    ]


def free_listed(reason: str) -> list[int]:
    """'needs 2 GPUs; 2 free (1, 3); ...' -> [1, 3]; 'needs 1 GPU; none free; ...' -> []."""
    part = reason.split("; ")[1]
    return [] if part == "none free" else [int(i) for i in part.split("(")[1][:-1].split(", ")]


@given(
    long_queues(),
    gpu_pools(),
    st.sampled_from(POLICIES),
    st.integers(0, 5),
    st.none() | st.integers(1, 6),
    st.booleans(),
)
@settings(max_examples=500, deadline=None)
def test_plan_decides_what_the_reference_decides(
    queue: list[QueuedTask],
    pool: list[GpuView],
    policy: Policy,
    running_cpu: int,
    max_cpu: int | None,
    as_task_queue: bool,
) -> None:
    kwargs = {"policy": policy, "running_cpu_tasks": running_cpu, "max_cpu_tasks": max_cpu}
    want_starts, want_pending = reference_plan(queue, pool, **kwargs)  # type: ignore[arg-type]
    p = plan(TaskQueue(queue) if as_task_queue else queue, pool, **kwargs)  # type: ignore[arg-type]
    assert p.starts == want_starts  # same tasks, same GPUs, same order
    assert list(p.pending) == list(want_pending)
    for t in queue:
        assert p.reason(t) == p.pending.get(t.task_id)
    if policy == "fifo":
        # Nothing takes a GPU after the first blocked task: the reasons are the same to the letter.
        assert dict(p.pending) == want_pending
        return
    order = [t.task_id for t in order_queue(queue)]
    gpu_started = {s.task_id for s in p.starts if s.gpu_ids}
    given_out = {i for s in p.starts for i in s.gpu_ids}
    blocked = oldest_blocked(p, queue, pool)
    kept: set[int] = set()
    if blocked is not None:
        earlier = order[: order.index(blocked.task_id)]
        before = {i for s in p.starts if s.task_id in earlier for i in s.gpu_ids}
        kept = set(target_set(blocked.n_gpus, pool)) & (set(free_ids(pool)) - before)
    for task_id, want in want_pending.items():
        got = p.pending[task_id]
        if " but " in want or not want.startswith("needs"):  # never fits; CPU task limit
            assert got == want
            continue
        if not any(i in gpu_started for i in order[order.index(task_id) + 1 :]):
            assert got == want
            continue
        # GPUs that tasks further down took in this pass show as theirs: only the free list, the
        # in-use parts and nothing else differ.
        assert got.split("; ")[0] == want.split("; ")[0]
        assert got.endswith("reserved for it") == want.endswith("reserved for it")
        open_now = set(free_ids(pool)) - given_out
        if blocked is None or task_id != blocked.task_id:
            open_now -= kept
        assert free_listed(got) == sorted(open_now)


# ------------------------------------------------------------------ reasons on demand


def test_reasons_of_tasks_the_pass_never_looked_at() -> None:
    pool = [GpuView(i, allocated_to=("r",)) for i in range(7)] + [GpuView(7)]
    tasks = [QueuedTask(f"w{i}", 2, 0, i) for i in range(1000)]
    tasks += [QueuedTask("huge", 9, 5, 0), QueuedTask("c0", 0, 0, 5), QueuedTask("c1", 0, 0, 6)]
    q = TaskQueue(tasks)
    busy = "GPUs 0, 1, 2, 3, 4, 5, 6 in use by r"

    back = plan(q, pool, policy="backfill", running_cpu_tasks=2, max_cpu_tasks=2)
    assert back.starts == ()
    assert back.examined <= 2
    assert back.reason(QueuedTask("w0", 2, 0, 0)) == (
        f"needs 2 GPUs; 1 free (7); {busy}; GPUs 0, 1 reserved for it"
    )
    # GPU 7 is outside w0's target set, so nothing is kept from the others.
    assert back.reason(tasks[999]) == f"needs 2 GPUs; 1 free (7); {busy}"
    assert back.reason(tasks[1000]) == "needs 9 GPUs but ANT has only 8"
    assert back.reason(tasks[1002]) == "CPU task limit reached (2 of 2 running)"
    assert back.pending == {t.task_id: back.reason(t) for t in order_queue(tasks)}

    fifo = plan(q, pool, policy="fifo")
    assert started(fifo) == {"c0": (), "c1": ()}
    assert fifo.reason(tasks[999]) == "waiting behind w0 (fifo)"
    assert fifo.reason(tasks[0]) == f"needs 2 GPUs; 1 free (7); {busy}"
    assert fifo.reason(tasks[1001]) is None


def test_reason_of_a_task_the_plan_did_not_cover() -> None:
    pool = pool_of(2)
    p = plan([QueuedTask("a", 1, 0, 0)], pool, policy="backfill")
    assert p.starts == (Start("a", (0,)),)
    # Queued after the pass: one that would fit waits for the next pass, one that would not
    # is told why, from the state the pass left.
    assert p.reason(QueuedTask("late", 1, 0, 1)) == NOT_PLANNED
    assert p.reason(QueuedTask("cpu", 0, 0, 1)) == NOT_PLANNED
    assert p.reason(QueuedTask("wide", 2, 0, 1)) == "needs 2 GPUs; 1 free (1); GPU 0 in use by a"
    p = plan([QueuedTask("a", 1, 0, 0), QueuedTask("b", 2, 0, 1)], pool, policy="fifo")
    assert p.pending == {"b": "needs 2 GPUs; 1 free (1); GPU 0 in use by a"}
    # A task put ahead of the blocked one after the pass was not covered by it.
    assert p.reason(QueuedTask("vip", 1, 9, 0)) == NOT_PLANNED
    assert p.reason(QueuedTask("next", 1, 0, 2)) == "waiting behind b (fifo)"


def test_pending_follows_the_queue_given() -> None:
    q = TaskQueue([QueuedTask("a", 1, 0, 0), QueuedTask("b", 1, 0, 1)])
    p = plan(q, pool_of(1))
    q.remove("a")  # the caller takes out what started: the reasons do not change
    assert p.pending == {"b": "needs 1 GPU; none free; GPU 0 in use by a"}


# ------------------------------------------------------------------ cost: independent of the queue

HUGE = 100_000


class CountingQueue(TaskQueue):
    """Counts the tasks a plan takes out of the queue, apart from what Plan.examined says."""

    pulled = 0

    def tasks_needing(
        self, n_gpus: int, n_nodes: int = 1, gpu_mem: int = 0
    ) -> Iterator[QueuedTask]:
        for task in super().tasks_needing(n_gpus, n_nodes, gpu_mem):
            self.pulled += 1
            yield task

    def __iter__(self) -> Iterator[QueuedTask]:
        raise AssertionError("the plan walked the whole queue")


def huge_queue(*n_gpus: int, extra: tuple[QueuedTask, ...] = ()) -> CountingQueue:
    """HUGE tasks needing the given GPU counts in turn, queue_seq 0, 1, ...; plus `extra`."""
    return CountingQueue(
        [*(QueuedTask(f"t{i}", n_gpus[i % len(n_gpus)], 0, i) for i in range(HUGE)), *extra]
    )


def cost(q: CountingQueue, pool: list[GpuView], **kwargs: object) -> tuple[Plan, int]:
    q.pulled = 0
    p = plan(q, pool, **kwargs)  # type: ignore[arg-type]
    assert p.examined <= q.pulled <= p.examined + len(q.gpu_counts())
    return p, p.examined


@pytest.mark.parametrize("policy", POLICIES)
def test_cost_with_every_gpu_busy(policy: Policy) -> None:
    q = huge_queue(1)
    pool = [GpuView(i, allocated_to=("r",)) for i in range(8)]
    p, examined = cost(q, pool, policy=policy)
    assert p.starts == () and examined == 1
    last = QueuedTask(f"t{HUGE - 1}", 1, 0, HUGE - 1)
    if policy == "fifo":
        assert p.reason(last) == "waiting behind t0 (fifo)"
    else:
        assert p.reason(last) == "needs 1 GPU; none free; GPUs 0, 1, 2, 3, 4, 5, 6, 7 in use by r"
    # Eight free GPUs: eight start, then the ninth task blocks and the pass ends.
    p, examined = cost(q, pool_of(8), policy=policy)
    assert len(p.starts) == 8 and examined == 9


@pytest.mark.parametrize("open_gpu", [0, 7])  # inside / outside the blocker's target set {0, 1}
def test_cost_backfill_with_one_open_gpu_and_two_gpu_tasks(open_gpu: int) -> None:
    pool = [GpuView(i, allocated_to=() if i == open_gpu else ("r",)) for i in range(8)]
    one = QueuedTask("one", 1, -1, 0)  # behind all of them
    q = huge_queue(2, extra=(one,))
    p, examined = cost(q, pool, policy="backfill")
    assert examined <= 3
    if open_gpu == 7:
        assert p.starts == (Start("one", (7,)),)
    else:
        assert p.starts == ()
        assert p.reason(one) == (
            "needs 1 GPU; none free; GPU 0 kept for older task t0; "
            "GPUs 1, 2, 3, 4, 5, 6, 7 in use by r"
        )


def test_cost_with_the_cpu_limit_reached() -> None:
    q = huge_queue(0)
    p, examined = cost(q, [], running_cpu_tasks=4, max_cpu_tasks=4)
    assert p.starts == () and examined == 0
    p, examined = cost(q, [], running_cpu_tasks=4, max_cpu_tasks=6)
    assert started(p) == {"t0": (), "t1": ()} and examined == 2


@pytest.mark.parametrize("policy", POLICIES)
def test_cost_with_tasks_that_never_fit_and_a_mixed_queue(policy: Policy) -> None:
    pool = [GpuView(i, allocated_to=("r",)) for i in range(7)] + [GpuView(7)]
    p, examined = cost(huge_queue(9), pool, policy=policy)
    assert p.starts == () and examined == 0
    mixed = huge_queue(0, 4, 1, 9, 2, 8, 3)
    p, examined = cost(mixed, pool, policy=policy, running_cpu_tasks=2, max_cpu_tasks=3)
    # One CPU task (t0) up to the limit; t1 (4 GPUs) blocks; backfill puts t2 (1 GPU) on GPU 7.
    assert started(p) == ({"t0": ()} if policy == "fifo" else {"t0": (), "t2": (7,)})
    assert examined <= 8  # a few per bucket at most
