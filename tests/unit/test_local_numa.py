"""RUNNER_numa_affinity in the local executor: a task asking for NUMA nodes runs on their CPUs
(a real process, its allowed CPUs read back from the kernel); nodes this machine lacks leave it
unpinned, silently. The NUMA nodes' CPU lists come from a directory laid out as sysfs is."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from ant_scheduler.executors.base import ExitInfo, LaunchRequest
from ant_scheduler.executors.local import LocalExecutor
from tests.unit.test_local_executor import run


def numa_root(tmp: Path, nodes: dict[int, str]) -> Path:
    root = tmp / "node"
    for node, cpus in nodes.items():
        (root / f"node{node}").mkdir(parents=True)
        (root / f"node{node}" / "cpulist").write_text(cpus + "\n")
    return root


def allowed_cpus(tmp: Path, numa_nodes: tuple[int, ...], root: Path) -> str:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> str:
        log = tmp / f"pin{len(numa_nodes)}.log"
        request = LaunchRequest(
            task_id=f"pin{len(numa_nodes)}",
            command="grep Cpus_allowed_list /proc/self/status",
            env={},
            gpu_ids=(0,),
            cwd=str(tmp),
            session="test",
            numa_nodes=numa_nodes,
        )
        ex.start(request, {"log": str(log), "exit": str(log.with_suffix(".exit"))})
        assert (await exits.get()).exit_code == 0
        return log.read_text().split(":")[1].strip()

    return run(scenario, numa_root=root)


def test_a_task_runs_on_the_cpus_of_its_gpus_numa_node(tmp_path: Path) -> None:
    mine = sorted(os.sched_getaffinity(0))
    last = mine[-1]
    root = numa_root(tmp_path, {0: str(mine[0]), 1: str(last)})
    assert allowed_cpus(tmp_path, (1,), root) == str(last)
    everything = allowed_cpus(tmp_path, (), root)  # not asked: every CPU ANT may use
    assert everything.split("-")[0] == str(mine[0]) or "," in everything


def test_nodes_this_machine_lacks_leave_the_task_unpinned(tmp_path: Path) -> None:
    root = numa_root(tmp_path, {0: "0"})
    unpinned = allowed_cpus(tmp_path, (), root)
    assert allowed_cpus(tmp_path, (7,), root) == unpinned
