"""Scheduling cost at a long queue: TaskQueue operations and policy.plan with 100,000 queued tasks.

Not a test: prints a table. With `--baseline REV` it also times the policy of git revision REV the
way the engine used it before TaskQueue: every pass builds a list of all queued tasks and plans it,
and every change re-sorts the whole queue for the positions.

    PYTHONPATH=src python benchmarks/policy_queue.py --baseline 351cff1

The cluster scenarios (issue P10: < 10 ms per decision) plan 100,000 queued tasks of 1, 2, 4 or 8
GPUs on 100 nodes x 8 GPUs, and on one 8-GPU machine, with 90% of the GPUs busy. A "decision" is
what the engine does at a submit: add the task to the TaskQueue, plan, the new task's reason and
position. With `--baseline REV` of a revision whose policy knows nodes and takes a TaskQueue, the
cluster scenarios are timed with that policy as well.

    PYTHONPATH=src python benchmarks/policy_queue.py --baseline b2ca956
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from ant_scheduler.core import policy  # noqa: E402
from ant_scheduler.core.queue import TaskQueue  # noqa: E402

N = 100_000
N_GPUS = 8
GOAL = 10e-3  # seconds per plan and per decision at cluster scale (issue P10)
BUSY = 0.9  # share of the GPUs allocated to running tasks in the cluster scenarios


def timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """Median seconds of `repeat` calls, and the last result."""
    runs: list[float] = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), result


def per_op(fn: Callable[[int], Any], count: int) -> float:
    t0 = time.perf_counter()
    for i in range(count):
        fn(i)
    return (time.perf_counter() - t0) / count


def fmt(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


def scenarios(mod: Any) -> dict[str, tuple[list[Any], list[Any], dict[str, Any]]]:
    """name -> (queue, pool, plan kwargs), built with the classes of policy module `mod`."""
    rng = random.Random(1)
    busy = [mod.GpuView(i, allocated_to=(f"r{i}",)) for i in range(N_GPUS)]
    one_open = [*busy[:-1], mod.GpuView(N_GPUS - 1)]  # outside the 2-GPU target set {0, 1}
    one_gpu = [mod.QueuedTask(f"t{i}", 1, 0, i) for i in range(N)]
    two_gpu = [mod.QueuedTask(f"t{i}", 2, 0, i) for i in range(N)]
    cpu = [mod.QueuedTask(f"t{i}", 0, 0, i) for i in range(N)]
    mixed = [
        mod.QueuedTask(f"t{i}", rng.choice([0, 1, 1, 2, 4, 8, 12]), rng.randint(-2, 2), i)
        for i in range(N)
    ]
    cpu_full = {"running_cpu_tasks": 4, "max_cpu_tasks": 4}
    return {
        "fifo, all GPUs busy, 1-GPU tasks": (one_gpu, busy, {"policy": "fifo"}),
        "backfill, all GPUs busy, 1-GPU tasks": (one_gpu, busy, {"policy": "backfill"}),
        "backfill, 1 GPU open, 2-GPU tasks": (two_gpu, one_open, {"policy": "backfill"}),
        "fifo, CPU limit reached, CPU tasks": (cpu, busy, {"policy": "fifo", **cpu_full}),
        "backfill, 1 GPU open, mixed, CPU limit reached": (
            mixed,
            one_open,
            {"policy": "backfill", **cpu_full},
        ),
    }


def cluster_pool(mod: Any, n_nodes: int, per_node: int, rng: random.Random) -> list[Any]:
    """n_nodes x per_node GPUs (global index = node * per_node + local), 90% of them busy, chosen at
    random so that a few free GPUs are scattered over the nodes. n_nodes=0: one machine (node "")
    with per_node GPUs."""
    total = max(n_nodes, 1) * per_node
    busy = set(rng.sample(range(total), round(total * BUSY)))
    pool = []
    for i in range(total):
        held = (f"r{i}",) if i in busy else ()
        if n_nodes:
            node, local = f"node-{i // per_node:03d}", i % per_node
            pool.append(mod.GpuView(i, allocated_to=held, node=node, local_index=local))
        else:
            pool.append(mod.GpuView(i, allocated_to=held))
    return pool


def cluster_mix(mod: Any, rng: random.Random, count: int, first_seq: int, prefix: str) -> list[Any]:
    """Tasks of 1, 2, 4 or 8 GPUs, a few of them at a higher or lower priority."""
    return [
        mod.QueuedTask(
            f"{prefix}{i}", rng.choice([1, 2, 4, 8]), rng.choice([0, 0, 0, 0, 1, -1]), first_seq + i
        )
        for i in range(count)
    ]


def cluster_scenarios(mod: Any) -> dict[str, tuple[list[Any], list[Any], dict[str, Any]]]:
    """name -> (queue, pool, plan kwargs): the cluster scale of issue P10, and one 8-GPU machine."""
    out: dict[str, tuple[list[Any], list[Any], dict[str, Any]]] = {}
    for n_nodes, where in [(100, "100 nodes x 8 GPUs"), (0, "1 machine x 8 GPUs")]:
        rng = random.Random(10)
        pool = cluster_pool(mod, n_nodes, 8, rng)
        queue = cluster_mix(mod, rng, N, 0, "t")
        nodes = {"nodes": [f"node-{k:03d}" for k in range(n_nodes)]} if n_nodes else {}
        for policy_name in ["fifo", "backfill"]:
            name = f"{policy_name}, {where}, 90% busy, 1/2/4/8-GPU tasks"
            out[name] = (queue, pool, {"policy": policy_name, **nodes})
    return out


def goal(seconds: float) -> str:
    return f"(goal < {fmt(GOAL)}: {'ok' if seconds < GOAL else 'MISSED'})"


def bench_cluster(mod: Any, repeat: int = 7, decisions: int = 50) -> None:
    """Per scenario: one plan (median of `repeat`) and one decision at a submit (median of
    `decisions`, each a new task of the same mix, taken out again after)."""
    for name, (queue, pool, kwargs) in cluster_scenarios(mod).items():
        tq = TaskQueue(queue)
        seconds, p = timed(functools.partial(mod.plan, tq, pool, **kwargs), repeat=repeat)
        n_free = sum(1 for g in pool if g.free)
        print(
            f"plan, {name}: {fmt(seconds)} {goal(seconds)}; looked at {p.examined} tasks, "
            f"starts {len(p.starts)} ({n_free} of {len(pool)} GPUs free)"
        )
        runs: list[float] = []
        for task in cluster_mix(mod, random.Random(11), decisions, N, "s"):
            t0 = time.perf_counter()
            tq.add(task)
            mod.plan(tq, pool, **kwargs).reason(task)
            tq.position(task.task_id)
            runs.append(time.perf_counter() - t0)
            tq.remove(task.task_id)
        one = statistics.median(runs)
        print(f"decision (add + plan + reason + position), {name}: {fmt(one)} {goal(one)}")


def bench_after() -> None:
    print(f"== after: TaskQueue ({N:,} queued, {N_GPUS} GPUs)")
    tasks = [policy.QueuedTask(f"t{i}", 1 + i % 3, i % 5, i) for i in range(N)]
    build, q = timed(lambda: TaskQueue(tasks), repeat=3)
    print(f"build TaskQueue from {N:,} tasks: {fmt(build)}")

    def add_all() -> TaskQueue:
        q = TaskQueue()
        for t in tasks:
            q.add(t)
        return q

    print(f"build by {N:,} add() calls: {fmt(timed(add_all, repeat=1)[0])}")
    extra = [policy.QueuedTask(f"x{i}", 1, random.randint(-5, 5), N + i) for i in range(1000)]
    print(f"add (at {N:,}): {fmt(per_op(lambda i: q.add(extra[i]), 1000))}")
    ids = [f"t{i}" for i in random.Random(2).sample(range(N), 1000)]
    print(f"position (at {N:,}): {fmt(per_op(lambda i: q.position(ids[i]), 1000))}")
    print(f"remove (at {N:,}): {fmt(per_op(lambda i: q.remove(ids[i]), 1000))}")
    print(f"promote (at {N:,}): {fmt(per_op(lambda i: q.promote(extra[i].task_id), 1000))}")

    for name, (queue, pool, kwargs) in scenarios(policy).items():
        tq = TaskQueue(queue)
        seconds, p = timed(functools.partial(policy.plan, tq, pool, **kwargs))
        print(f"plan, {name}: {fmt(seconds)}; looked at {p.examined} tasks")
    queue, pool, kwargs = scenarios(policy)["backfill, 1 GPU open, mixed, CPU limit reached"]
    tq = TaskQueue(queue)
    p = policy.plan(tq, pool, **kwargs)
    one = timed(lambda: [p.reason(t) for t in queue[-1000:]], repeat=3)[0] / 1000
    print(f"Plan.reason, per task (mixed): {fmt(one)}")
    print(f"Plan.pending, all {N:,} (mixed): {fmt(timed(lambda: dict(p.pending), repeat=1)[0])}")

    # One submit at 100,000 queued as the engine would do it: add, plan, the new task's position.
    pool = [policy.GpuView(i, allocated_to=(f"r{i}",)) for i in range(N_GPUS)]
    tq = TaskQueue(policy.QueuedTask(f"t{i}", 1, 0, i) for i in range(N))

    def submit(i: int) -> None:
        task = policy.QueuedTask(f"s{i}", 1, 0, N + i)
        tq.add(task)
        p = policy.plan(tq, pool, policy="backfill")
        p.reason(task)
        tq.position(task.task_id)

    print(f"submit (add + plan + reason + position): {fmt(per_op(submit, 1000))}")

    print(f"== cluster scale (issue P10): {N:,} queued, {BUSY:.0%} of the GPUs busy")
    bench_cluster(policy)


def load_baseline(rev: str) -> types.ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:src/ant_scheduler/core/policy.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    mod = types.ModuleType("policy_baseline")
    sys.modules[mod.__name__] = mod  # dataclasses look their module up
    exec(compile(source, f"{rev}:policy.py", "exec"), mod.__dict__)
    return mod


def bench_before(rev: str) -> None:
    old = load_baseline(rev)
    print(f"== before: policy at {rev}, a list of all queued tasks ({N:,} queued)")
    tasks = [old.QueuedTask(f"t{i}", 1 + i % 3, i % 5, i) for i in range(N)]
    queued = {t.task_id: t for t in tasks}  # the engine's dict of queued tasks

    def positions() -> dict[str, int]:  # the engine's _refresh_positions, on every change
        order = sorted(queued.values(), key=lambda t: (-t.priority, t.queue_seq))
        return {t.task_id: n for n, t in enumerate(order, 1)}

    print(f"positions of all (sort, on every change): {fmt(timed(positions)[0])}")
    build = timed(
        lambda: [old.QueuedTask(t.task_id, t.n_gpus, t.priority, t.queue_seq) for t in tasks]
    )
    print(f"build the list of queued tasks (every pass): {fmt(build[0])}")
    for name, (queue, pool, kwargs) in scenarios(old).items():
        seconds = timed(functools.partial(old.plan, queue, pool, **kwargs))
        print(f"plan, {name}: {fmt(seconds[0])}")
    if "node" in old.GpuView.__dataclass_fields__ and hasattr(old, "TaskQueue"):
        print(f"== before: policy at {rev} on a TaskQueue, cluster scale ({N:,} queued)")
        bench_cluster(old, repeat=3, decisions=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REV", help="also time the policy of this revision")
    args = parser.parse_args()
    if args.baseline:
        bench_before(args.baseline)
    bench_after()


if __name__ == "__main__":
    main()
