"""Fair share and per-user GPU limits in the pure policy, with a fake clock: simulations of a
shared box (hypothesis), the order of owners, limits and their reasons, and the cost."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ant_scheduler.core.policy import GpuView, QueuedTask, plan
from ant_scheduler.core.queue import TaskQueue
from ant_scheduler.core.usage import DecayedUsage, decayed_hours

HOUR = 3600.0


@dataclass
class Box:
    """A shared box of `n_gpus` GPUs run by the pure policy: tasks start as plans say and end
    after their duration; usage is decayed GPU-hours, as the scheduler keeps it."""

    n_gpus: int
    half_life: float = 24 * HOUR
    policy: str = "fairshare"
    max_gpus: dict[str, int] = field(default_factory=dict)
    now: float = 0.0
    queue: TaskQueue = field(default_factory=TaskQueue)
    durations: dict[str, float] = field(default_factory=dict)
    running: dict[str, tuple[QueuedTask, tuple[int, ...], float]] = field(default_factory=dict)
    ends: list[tuple[float, str]] = field(default_factory=list)
    usage: DecayedUsage = field(init=False)
    used: dict[str, float] = field(default_factory=dict)  # GPU-hours, not decayed
    started_at: dict[str, float] = field(default_factory=dict)
    seq: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.usage = DecayedUsage(self.half_life)

    def submit(self, owner: str, task_id: str, n_gpus: int, duration: float) -> None:
        self.queue.add(QueuedTask(task_id, n_gpus, 0, next(self.seq), owner=owner))
        self.durations[task_id] = duration

    def step(self) -> list[str]:
        """One pass at `now`; the ids it started."""
        allocated = {i: t.task_id for t, ids, _ in self.running.values() for i in ids}
        pool = [
            GpuView(i, allocated_to=(allocated[i],) if i in allocated else ())
            for i in range(self.n_gpus)
        ]
        held: dict[str, int] = {}
        runs: dict[str, list[tuple[int, float]]] = {}
        for task, ids, start in self.running.values():
            held[task.owner] = held.get(task.owner, 0) + len(ids)
            runs.setdefault(task.owner, []).append((len(ids), start))
        owners = self.queue.owners() | set(runs)
        usage = {o: self.usage.value(o, self.now, runs.get(o, ())) for o in owners}
        p = plan(
            self.queue,
            pool,
            policy=self.policy,  # type: ignore[arg-type]
            usage=usage,
            held=held,
            max_gpus=self.max_gpus,
        )
        for start in p.starts:
            task = self.queue.remove(start.task_id)
            assert not set(start.gpu_ids) & set(allocated), "a GPU given twice"
            allocated.update(dict.fromkeys(start.gpu_ids, task.task_id))
            self.running[task.task_id] = (task, start.gpu_ids, self.now)
            self.started_at[task.task_id] = self.now
            heapq.heappush(self.ends, (self.now + self.durations[task.task_id], task.task_id))
        for owner, limit in self.max_gpus.items():
            mine = sum(len(ids) for t, ids, _ in self.running.values() if t.owner == owner)
            assert mine <= limit, f"{owner} holds {mine} GPUs, over its limit {limit}"
        return [s.task_id for s in p.starts]

    def advance(self) -> list[str]:
        """To the next end: the tasks ending then leave, their usage counted."""
        at = self.ends[0][0]
        self.now = at
        done = []
        while self.ends and self.ends[0][0] == at:
            _, task_id = heapq.heappop(self.ends)
            task, ids, start = self.running.pop(task_id)
            self.usage.add(task.owner, len(ids), start, at, at)
            self.used[task.owner] = self.used.get(task.owner, 0.0) + len(ids) * (at - start) / HOUR
            done.append(task_id)
        return done


def used_until(box: Box, until: float) -> dict[str, float]:
    """GPU-hours per owner from 0 to `until`, running tasks counted up to it."""
    out = dict(box.used)
    for task, ids, start in box.running.values():
        out[task.owner] = out.get(task.owner, 0.0) + len(ids) * (until - start) / HOUR
    return out


# ------------------------------------------------------------------ simulations (hypothesis)


@given(
    durations=st.lists(st.floats(0.5, 4.0), min_size=30, max_size=60),
    n_users=st.integers(2, 3),
    n_gpus=st.sampled_from([2, 4, 8]),
)
@settings(max_examples=60, deadline=None)
def test_equal_demand_converges_to_equal_shares(
    durations: list[float], n_users: int, n_gpus: int
) -> None:
    """Each user queues the same tasks (1-GPU, the same durations), the first user all of its
    tasks before anyone else's (fifo would run them all first). Fair share gives each user
    about the same GPU-hours while all of them still have work queued."""
    box = Box(n_gpus)
    users = [f"u{k}" for k in range(n_users)]
    for user in users:
        for i, hours in enumerate(durations):
            box.submit(user, f"{user}-{i}", 1, hours * HOUR)
    box.step()
    while all(any(True for _ in box.queue.tasks_of(u, 1)) for u in users):
        box.advance()
        box.step()
    shares = used_until(box, box.now)
    total = sum(shares.values())
    # Equal within what one round of tasks can tilt: each GPU's current task.
    slack = n_gpus * max(durations) / total + 0.02
    for user in users:
        assert abs(shares[user] / total - 1 / n_users) <= slack, shares


@given(
    light=st.lists(st.floats(0.25, 3.0), min_size=5, max_size=20),
    heavy_usage=st.floats(0, 5000),
    heavy_gpus=st.integers(1, 4),
    half_life_hours=st.sampled_from([2.0, 12.0, 48.0]),
)
@settings(max_examples=60, deadline=None)
def test_no_starvation_under_endless_demand(
    light: list[float], heavy_usage: float, heavy_gpus: int, half_life_hours: float
) -> None:
    """Two light users keep the box full of small tasks (a new one for each that ends, for
    ever); a heavy user with a large past usage queues one big task. It still starts: its usage
    decays while theirs grows, and once it leads it reserves its GPUs (backfill) until they
    drain."""
    box = Box(4, half_life=half_life_hours * HOUR)
    box.usage.add("heavy", 1, -heavy_usage * HOUR, 0.0, 0.0)  # heavy_usage GPU-hours just now
    box.submit("heavy", "big", heavy_gpus, HOUR)
    cycle = itertools.cycle(light)
    n = itertools.count()
    for user in ("l1", "l2"):
        for _ in range(6):
            box.submit(user, f"{user}-{next(n)}", 1, next(cycle) * HOUR)
    box.step()
    for _ in range(20_000):
        if "big" in box.started_at:
            break
        for task_id in box.advance():
            owner = task_id.split("-")[0]
            if owner in ("l1", "l2"):
                box.submit(owner, f"{owner}-{next(n)}", 1, next(cycle) * HOUR)
        box.step()
    assert "big" in box.started_at, "the heavy user's task never started"


@given(
    tasks=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 4), st.floats(0.1, 5.0)),
        min_size=1,
        max_size=40,
    ),
    limits=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(1, 4), max_size=3),
    policy=st.sampled_from(["fifo", "backfill", "fairshare"]),
)
@settings(max_examples=150, deadline=None)
def test_every_task_starts_and_no_limit_or_gpu_is_exceeded(
    tasks: list[tuple[str, int, float]], limits: dict[str, int], policy: str
) -> None:
    """Any mix of users, sizes and limits, every policy: no GPU is given twice, no user holds
    more than its max_gpus, and every task starts (one needing more GPUs than its user's limit
    excepted: it would never fit under it)."""
    box = Box(4, policy=policy, max_gpus=limits)
    for i, (owner, n_gpus, hours) in enumerate(tasks):
        box.submit(owner, f"t{i}", n_gpus, hours * HOUR)
    box.step()
    while box.ends:
        box.advance()
        box.step()
    never = {f"t{i}" for i, (owner, n_gpus, _) in enumerate(tasks) if n_gpus > limits.get(owner, 4)}
    assert set(box.started_at) == {f"t{i}" for i in range(len(tasks))} - never


# ------------------------------------------------------------------ the rules, by example


def test_fairshare_order_of_owners_and_within_an_owner() -> None:
    """The owner with the least usage first; its own tasks in start order; ties between
    owners to the one holding fewer GPUs, then start order."""
    q = [
        QueuedTask("a1", 1, 0, 1, owner="alice"),
        QueuedTask("a2", 1, 5, 9, owner="alice"),  # alice's first: higher priority
        QueuedTask("b1", 1, 0, 2, owner="bob"),
        QueuedTask("b2", 1, 0, 3, owner="bob"),
    ]
    p = plan(q, [GpuView(i) for i in range(3)], policy="fairshare", usage={"alice": 5.0})
    assert [s.task_id for s in p.starts] == ["a2", "b1", "b2"]  # in start order
    assert {s.task_id: s.gpu_ids for s in p.starts} == {"b1": (0,), "b2": (1,), "a2": (2,)}
    # Equal usage: they alternate (the one holding fewer GPUs goes next).
    p = plan(q, [GpuView(i) for i in range(3)], policy="fairshare")
    assert {s.task_id: s.gpu_ids for s in p.starts} == {"a2": (0,), "b1": (1,), "a1": (2,)}


def test_fairshare_reserves_for_the_first_owner_that_does_not_fit() -> None:
    q = [
        QueuedTask("big", 3, 0, 5, owner="bob"),
        QueuedTask("small", 1, 0, 1, owner="alice"),
    ]
    busy = ("r",)
    pool = [GpuView(0), GpuView(1, allocated_to=busy), GpuView(2, allocated_to=busy), GpuView(3)]
    p = plan(q, pool, policy="fairshare", usage={"alice": 9.0, "bob": 1.0})
    # bob goes first and waits for GPUs 0-2: GPU 0 is kept for it; small takes GPU 3.
    assert {s.task_id: s.gpu_ids for s in p.starts} == {"small": (3,)}
    assert p.reason(q[0]) == (
        "needs 3 GPUs; 1 free (0); GPUs 1, 2 in use by r; GPU 3 in use by small; "
        "GPUs 0, 1, 2 reserved for it"
    )


def test_max_gpus_holds_only_that_users_tasks() -> None:
    q = [
        QueuedTask("a1", 2, 0, 1, owner="alice"),
        QueuedTask("b1", 1, 0, 2, owner="bob"),
    ]
    pool = [GpuView(0, allocated_to=("a0",)), GpuView(1), GpuView(2), GpuView(3)]
    for policy in ("fifo", "backfill", "fairshare"):
        p = plan(q, pool, policy=policy, held={"alice": 1}, max_gpus={"alice": 2})  # type: ignore[arg-type]
        assert [s.task_id for s in p.starts] == ["b1"], policy
        assert p.reason(q[0]) == (
            "alice holds 1 of 2 GPUs (max_gpus); this task needs 2: "
            "it waits for one of alice's tasks to end"
        )


def test_without_users_or_limits_fairshare_is_backfill() -> None:
    q = [QueuedTask(f"t{i}", 1 + i % 3, 0, i) for i in range(30)]
    pool = [GpuView(i, allocated_to=("r",) if i % 3 == 0 else ()) for i in range(8)]
    a = plan(q, pool, policy="backfill")
    b = plan(q, pool, policy="fairshare")
    assert a.starts == b.starts
    assert a.pending == {k: v for k, v in b.pending.items()}


# ------------------------------------------------------------------ cost


class CountingQueue(TaskQueue):
    pulled = 0

    def tasks_of(
        self, owner: str, n_gpus: int, n_nodes: int = 1, gpu_mem: int = 0
    ) -> Iterator[QueuedTask]:
        for task in super().tasks_of(owner, n_gpus, n_nodes, gpu_mem):
            self.pulled += 1
            yield task

    def __iter__(self) -> Iterator[QueuedTask]:
        raise AssertionError("the plan walked the whole queue")


@pytest.mark.parametrize("limited", [False, True])
def test_fairshare_pass_reads_only_the_heads_of_users_queues(limited: bool) -> None:
    """100,000 queued tasks of three users: a pass reads what it starts plus a head per
    (user, size), also when a user at its limit has 50,000 of them queued."""
    users = ["alice", "bob", "carol"]
    q = CountingQueue(
        QueuedTask(f"t{i}", 1 + i % 2, 0, i, owner=users[i % 3]) for i in range(100_000)
    )
    pool = [GpuView(i) for i in range(8)]
    limits = {"alice": 0} if limited else {}
    p = plan(q, pool, policy="fairshare", usage={"bob": 3.0}, max_gpus=limits)
    assert sum(len(s.gpu_ids) for s in p.starts) >= 7
    assert q.pulled <= len(p.starts) + 2 * len(q.groups())
    assert p.examined <= len(p.starts) + len(q.groups())


def test_decayed_hours_halve_with_each_half_life() -> None:
    assert decayed_hours(2, 0, HOUR, HOUR, 1e12) == pytest.approx(2.0)
    one = decayed_hours(1, 0, 60, 60, 10 * HOUR)
    assert decayed_hours(1, 0, 60, 60 + 10 * HOUR, 10 * HOUR) == pytest.approx(one / 2)
    usage = DecayedUsage(10 * HOUR)
    usage.add("a", 1, 0, 60, 60)
    assert usage.ended("a", 60 + 20 * HOUR) == pytest.approx(one / 4)
