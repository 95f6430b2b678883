from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ant_scheduler.core.policy import GpuView, Plan, QueuedTask, order_queue, plan


def gpus(n: int, **overrides: dict[int, object]) -> list[GpuView]:
    out = []
    for i in range(n):
        kwargs = {key: value[i] for key, value in overrides.items() if i in value}
        out.append(GpuView(index=i, **kwargs))  # type: ignore[arg-type]
    return out


def started(p: Plan) -> dict[str, tuple[int, ...]]:
    return {s.task_id: s.gpu_ids for s in p.starts}


def test_lowest_numbered_free_set() -> None:
    pool = gpus(4, allocated_to={0: ("x",)})
    p = plan([QueuedTask("a", 2)], pool)
    assert started(p) == {"a": (1, 2)}


def test_order_is_priority_then_seq() -> None:
    q = [QueuedTask("a", 1, 0, 1), QueuedTask("b", 1, 5, 2), QueuedTask("c", 1, 0, 0)]
    assert [t.task_id for t in order_queue(q)] == ["b", "c", "a"]
    p = plan(q, gpus(1))
    assert started(p) == {"b": (0,)}
    assert p.pending["c"] == "needs 1 GPU; none free; GPU 0 given to b"  # the blocker
    assert p.pending["a"] == "waiting behind c (fifo)"


def test_detailed_pending_reason() -> None:
    pool = gpus(
        4,
        enabled={0: False},
        external={2: "pid 4242 alice python x.py"},
    )
    p = plan([QueuedTask("big", 4)], pool)
    assert p.pending["big"] == ("needs 4 GPUs but only 3 of 4 can be used (GPU 0 disabled)")
    p = plan([QueuedTask("t", 3)], pool)
    assert p.pending["t"] == (
        "needs 3 GPUs; 2 free (1, 3); GPU 0 disabled; "
        "GPU 2 busy outside ANT (pid 4242 alice python x.py)"
    )


def test_impossible_task_waits_but_blocks_nobody() -> None:
    p = plan([QueuedTask("huge", 9), QueuedTask("small", 1)], gpus(4))
    assert started(p) == {"small": (0,)}
    assert p.pending["huge"] == "needs 9 GPUs but this machine has only 4"
    p = plan([QueuedTask("x", 1)], gpus(2, unavailable={0: "NVML error", 1: "gone"}))
    assert "only 0 of 2 can be used" in p.pending["x"]
    assert "GPU 0 unavailable (NVML error)" in p.pending["x"]


def test_cpu_tasks_never_wait_behind_gpu_tasks_and_respect_limit() -> None:
    q = [QueuedTask("gpu", 4, 0, 0), QueuedTask("c1", 0, 0, 1), QueuedTask("c2", 0, 0, 2)]
    p = plan(q, gpus(2, allocated_to={0: ("x",)}))
    assert set(started(p)) == {"c1", "c2"}
    assert started(p)["c1"] == ()
    p = plan(q, gpus(2), running_cpu_tasks=1, max_cpu_tasks=2)
    assert set(started(p)) == {"c1"}
    assert p.pending["c2"] == "CPU task limit reached (2 of 2 running)"


def test_fifo_blocks_and_backfill_uses_gpus_outside_the_reservation() -> None:
    # GPUs 0 and 1 are busy; "wide" needs 2 and is blocked; its target set is {0, 1}.
    pool = gpus(4, allocated_to={0: ("r0",), 1: ("r1",), 2: ("r2",)})
    q = [QueuedTask("wide", 2, 0, 0), QueuedTask("narrow", 1, 0, 1)]
    fifo = plan(q, pool, policy="fifo")
    assert started(fifo) == {}
    assert fifo.pending["narrow"] == "waiting behind wide (fifo)"
    back = plan(q, pool, policy="backfill")
    assert started(back) == {"narrow": (3,)}
    # Once GPU 0 frees, it is kept for "wide"; a newcomer cannot take it.
    pool = gpus(4, allocated_to={1: ("r1",), 2: ("r2",), 3: ("narrow",)})
    back = plan([*q[:1], QueuedTask("late", 1, 0, 2)], pool, policy="backfill")
    assert started(back) == {}
    assert "GPU 0 kept for older task wide" in back.pending["late"]


# ------------------------------------------------------------------ properties

gpu_pools = st.lists(
    st.tuples(
        st.booleans(),
        st.sampled_from([(), ("x",)]),
        st.sampled_from([None, "pid 1 bob"]),
        st.sampled_from([None, None, None, "err"]),
    ),
    max_size=8,
).map(
    lambda rows: [
        GpuView(i, enabled=e, allocated_to=a, external=x, unavailable=u)
        for i, (e, a, x, u) in enumerate(rows)
    ]
)
queues = st.lists(st.tuples(st.integers(0, 5), st.integers(-2, 2)), max_size=20).map(
    lambda rows: [QueuedTask(f"t{i}", n, p, i) for i, (n, p) in enumerate(rows)]
)


@given(queues, gpu_pools, st.sampled_from(["fifo", "backfill"]), st.none() | st.integers(1, 4))
@settings(max_examples=500)
def test_plan_invariants(
    queue: list[QueuedTask], pool: list[GpuView], policy: str, max_cpu: int | None
) -> None:
    p = plan(queue, pool, policy=policy, max_cpu_tasks=max_cpu)  # type: ignore[arg-type]
    free = {g.index for g in pool if g.free}
    given_out = [i for s in p.starts for i in s.gpu_ids]
    assert len(given_out) == len(set(given_out)), "a GPU was assigned twice"
    assert set(given_out) <= free, "a disabled/busy/allocated GPU was assigned"
    ids = [s.task_id for s in p.starts]
    assert len(ids) == len(set(ids))
    assert set(ids) | set(p.pending) == {t.task_id for t in queue}
    assert not set(ids) & set(p.pending)
    by_id = {t.task_id: t for t in queue}
    for s in p.starts:
        assert len(s.gpu_ids) == by_id[s.task_id].n_gpus
    if max_cpu is not None:
        assert sum(1 for s in p.starts if by_id[s.task_id].n_gpus == 0) <= max_cpu


@given(queues, gpu_pools)
@settings(max_examples=500)
def test_fifo_order_holds(queue: list[QueuedTask], pool: list[GpuView]) -> None:
    p = plan(queue, pool, policy="fifo")
    usable = sum(1 for g in pool if g.usable)
    ordered = [t for t in order_queue(queue) if 0 < t.n_gpus <= usable]
    started_ids = {s.task_id for s in p.starts}
    flags = [t.task_id in started_ids for t in ordered]
    # Started GPU tasks are a prefix of the possible GPU tasks in queue order.
    assert flags == sorted(flags, reverse=True)


@given(queues, gpu_pools)
@settings(max_examples=500)
def test_backfill_never_gives_away_the_oldest_blocked_tasks_gpus(
    queue: list[QueuedTask], pool: list[GpuView]
) -> None:
    p = plan(queue, pool, policy="backfill")
    fifo = plan(queue, pool, policy="fifo")
    usable = [g for g in pool if g.usable]
    ordered = [t for t in order_queue(queue) if 0 < t.n_gpus <= len(usable)]
    started_ids = {s.task_id for s in p.starts}
    blocked = next((t for t in ordered if t.task_id not in started_ids), None)
    # Everything fifo starts, backfill starts too (backfill only adds).
    assert {s.task_id for s in fifo.starts} <= started_ids
    if blocked is None:
        return
    clean = [g.index for g in usable if g.external is None]
    target = clean[: blocked.n_gpus]
    if len(target) < blocked.n_gpus:
        target += [g.index for g in usable if g.external is not None][
            : blocked.n_gpus - len(target)
        ]
    position = ordered.index(blocked)
    later = {t.task_id for t in ordered[position + 1 :]}
    for s in p.starts:
        if s.task_id in later:
            assert not set(s.gpu_ids) & set(target)


def test_backfill_does_not_starve_a_wide_task() -> None:
    """1-GPU tasks keep arriving; the 4-GPU task still starts under backfill."""
    rng = random.Random(7)
    n_gpus = 4
    running: dict[str, tuple[tuple[int, ...], int]] = {}  # id -> (gpus, end time)
    queue = [QueuedTask("wide", 4, 0, 0)]
    for i in range(3):
        running[f"seed{i}"] = ((i,), rng.randint(1, 5))
    seq = 1
    wide_started = None
    for now in range(200):
        running = {k: v for k, v in running.items() if v[1] > now}
        for _ in range(rng.randint(0, 2)):
            queue.append(QueuedTask(f"n{seq}", 1, 0, seq))
            seq += 1
        allocated = {g: k for k, (gs, _) in running.items() for g in gs}
        pool = [
            GpuView(i, allocated_to=(allocated[i],) if i in allocated else ())
            for i in range(n_gpus)
        ]
        p = plan(queue, pool, policy="backfill")
        for s in p.starts:
            running[s.task_id] = (s.gpu_ids, now + rng.randint(1, 6))
            if s.task_id == "wide":
                wide_started = now
        queue = [t for t in queue if t.task_id not in {s.task_id for s in p.starts}]
        if wide_started is not None:
            break
    assert wide_started is not None
