"""The engine over several nodes, in-process: the fake executor and a fake GPU backend with a node
layout stand for a cluster. Placement on one node, gangs all or nothing, a node leaving (its tasks
lost, its GPUs offline, restore), a node joining (its GPUs appear, waiting tasks start), an
executor cut off (nothing starts, the reason says why) and back. Each test ends with the
self-check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ant_scheduler.core.errors import GpuNotFound, InvalidQuery, LaunchError
from ant_scheduler.core.task import TaskState
from ant_scheduler.engine import Engine
from ant_scheduler.executors.base import LaunchRequest, RankPlacement
from ant_scheduler.executors.fake import FakeExecutor
from ant_scheduler.executors.local import LocalExecutor
from ant_scheduler.monitor.fake import FakeGpuBackend
from ant_scheduler.store import Store
from tests.unit.test_engine_integrity import settings, settle

LEFT = "offline: node node-b left the cluster"


def two_nodes() -> FakeGpuBackend:
    return FakeGpuBackend(4, nodes={"node-a": 2, "node-b": 2})


@asynccontextmanager
async def engine_for(
    tmp: Path, ex: FakeExecutor, backend: FakeGpuBackend, **changes: Any
) -> AsyncIterator[Engine]:
    store = Store(tmp / "state" / "ant.db")
    engine = Engine(settings(tmp, **changes), store, ex, backend, launch_dir=str(tmp))
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()
        store.close()


Body = Callable[[Engine, FakeExecutor, FakeGpuBackend], Awaitable[None]]


def run(tmp: Path, body: Body, backend: FakeGpuBackend | None = None, **changes: Any) -> None:
    async def main() -> None:
        ex, gpus = FakeExecutor(), backend or two_nodes()
        async with engine_for(tmp, ex, gpus, **changes) as engine:
            await asyncio.wait_for(body(engine, ex, gpus), 30)
            await settle()
            report = engine.doctor()
            assert report["ok"], report["problems"]

    asyncio.run(main())


async def submit(engine: Engine, command: str = "true", **kw: Any) -> None:
    await engine.submit(command, **kw)
    await settle()


def reason(engine: Engine, task_id: str) -> str | None:
    return engine.queue_info(engine.get(task_id))[1]


def events(engine: Engine, kind: str) -> list[Any]:
    return [e.data for e in engine.events.events_after(0) if e.type == kind]


# ---------------------------------------------------------------------------- placement


def test_an_n_gpu_task_runs_on_one_node_with_that_nodes_indices(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, gpus: FakeGpuBackend) -> None:
        await submit(engine, n_gpus=2, task_id="a")
        await submit(engine, n_gpus=2, task_id="b")
        a, b = engine.get("a"), engine.get("b")
        assert (a.state, a.gpu_ids, a.nodes) == (TaskState.RUNNING, [0, 1], ["node-a"])
        assert (b.state, b.gpu_ids, b.nodes) == (TaskState.RUNNING, [2, 3], ["node-b"])
        assert ex.placement("b") == (RankPlacement("node-b", (2, 3), (0, 1)),)
        assert ex.procs["b"].request.n_nodes == 1
        gpu_dicts = {g["label"]: g for g in engine.gpu_dicts()}
        assert list(gpu_dicts) == ["node-a:0", "node-a:1", "node-b:0", "node-b:1"]
        assert gpu_dicts["node-b:1"]["task_ids"] == ["b"]
        assert (gpu_dicts["node-b:1"]["node"], gpu_dicts["node-b:1"]["local_index"]) == (
            "node-b",
            1,
        )
        assert engine.task_dict(b)["nodes"] == ["node-b"]
        # 3 GPUs on one node: never here, and the reason says why.
        await submit(engine, n_gpus=3, task_id="wide")
        assert reason(engine, "wide") == (
            "needs 3 GPUs on one node but the largest node has 2 (node-a, node-b)"
        )
        ex.finish("a")
        await submit(engine, n_gpus=1, task_id="one")
        assert engine.get("one").nodes == ["node-a"]

    run(tmp_path, body)


def test_a_task_on_this_machine_reads_as_before(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, gpus: FakeGpuBackend) -> None:
        await submit(engine, n_gpus=2, task_id="a")
        task = engine.get("a")
        assert task.nodes == [] and task.n_nodes == 1
        assert ex.placement("a") == (RankPlacement("", (0, 1), (0, 1)),)
        assert [g["label"] for g in engine.gpu_dicts()] == ["0", "1", "2", "3"]
        assert engine.health()["nodes"] == []
        assert engine.health()["executor"] == {"name": "fake", "available": True, "detail": None}
        # One node only: a gang never fits, and says so.
        await submit(engine, n_gpus=1, n_nodes=2, task_id="gang")
        assert reason(engine, "gang") == "needs 2 nodes but ANT has only 1"
        await submit(engine, "ant_n_nodes=2 true", n_gpus=0, task_id="cpu-gang")
        assert reason(engine, "cpu-gang") == "needs 2 nodes but ANT has only 1"
        assert engine.get("cpu-gang").n_nodes == 2

    run(tmp_path, body, FakeGpuBackend(4))


def test_the_local_executor_refuses_a_placement_on_other_nodes(tmp_path: Path) -> None:
    ex = LocalExecutor(log_dir=tmp_path)
    request = LaunchRequest(
        "t",
        "true",
        {},
        (0,),
        str(tmp_path),
        "s",
        n_nodes=1,
        placement=(RankPlacement("node-b", (0,), (0,)),),
    )
    with pytest.raises(LaunchError, match="this machine only"):
        ex.prepare(request)
    with pytest.raises(InvalidQuery, match="rank 0 only"):
        ex.output({"log": str(tmp_path / "x.log")}, rank=1)
    assert ex.availability() is None


# ---------------------------------------------------------------------------- gangs


def test_a_gang_starts_on_distinct_nodes_all_or_nothing(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, gpus: FakeGpuBackend) -> None:
        await submit(engine, n_gpus=1, task_id="holder")  # node-a:0 (best fit is by name here)
        await submit(engine, n_gpus=2, n_nodes=2, task_id="gang")
        assert engine.get("gang").state is TaskState.QUEUED  # node-a has only 1 free: nothing
        assert "gang" not in ex.procs
        assert reason(engine, "gang") == (
            "needs 2 nodes with 2 free GPUs each; 1 has (node-b); GPU node-a:0 in use by holder"
        )
        await submit(engine, n_gpus=1, n_nodes=3, task_id="three")
        assert reason(engine, "three") == "needs 3 nodes but ANT has only 2"
        ex.finish("holder")
        await settle()
        gang = engine.get("gang")
        assert gang.state is TaskState.RUNNING
        assert (gang.nodes, gang.gpu_ids) == (["node-a", "node-b"], [0, 1, 2, 3])
        assert ex.placement("gang") == (
            RankPlacement("node-a", (0, 1), (0, 1)),
            RankPlacement("node-b", (2, 3), (0, 1)),
        )
        assert ex.procs["gang"].request.n_nodes == 2
        # Every rank's output is kept; rank 0's by default.
        ex.write("gang", "rank zero\n")
        ex.write("gang", "rank one\n", rank=1)
        out0, out1 = engine.output(gang), engine.output(gang, 1)
        assert out0 is not None and out1 is not None
        assert out0.last_lines(5)[0] == "rank zero\n"
        assert out1.last_lines(5)[0] == "rank one\n"
        assert engine.terminal(gang, rank=1) == ["rank one"]
        with pytest.raises(InvalidQuery, match="ranks 0 to 1, not 2"):
            engine.output(gang, 2)
        assert "ant_n_nodes=2" in engine.task_dict(gang)["copy_command"]
        ex.finish("gang")
        await settle()
        assert engine.get("gang").state is TaskState.SUCCEEDED
        assert engine.get("gang").nodes == ["node-a", "node-b"]

    run(tmp_path, body)


def test_cpu_tasks_go_to_the_least_busy_node(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, gpus: FakeGpuBackend) -> None:
        await submit(engine, n_gpus=2, task_id="gpu")  # node-a
        for name in ("c1", "c2", "c3"):
            await submit(engine, n_gpus=0, task_id=name)
        assert [engine.get(n).nodes for n in ("c1", "c2", "c3")] == [
            ["node-b"],
            ["node-a"],
            ["node-b"],
        ]
        assert [ex.placement(n)[0].node for n in ("c1", "c2", "c3")] == [
            "node-b",
            "node-a",
            "node-b",
        ]

    run(tmp_path, body)


# ---------------------------------------------------------------------------- leave and join


def test_a_node_that_leaves_loses_its_tasks_and_its_gpus_go_offline(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, gpus: FakeGpuBackend) -> None:
        await submit(engine, n_gpus=2, task_id="on-a")
        await submit(engine, n_gpus=2, task_id="on-b")
        await submit(engine, n_gpus=0, task_id="cpu")  # one task on each node: node-a, by name
        assert engine.get("cpu").nodes == ["node-a"]
        gpus.remove_node("node-b")
        assert ex.node_left("node-b") == ["on-b"]
        await settle()
        lost = engine.get("on-b")
        assert lost.state is TaskState.LOST
        assert lost.reason == "node node-b left the cluster"
        assert engine.get("on-a").state is TaskState.RUNNING
        assert engine.get("cpu").state is TaskState.RUNNING
        by_label = {g["label"]: g for g in engine.gpu_dicts()}
        for label in ("node-b:0", "node-b:1"):
            assert by_label[label]["state"] == "unavailable"
            assert by_label[label]["error"] == LEFT
            assert by_label[label]["task_ids"] == []
        # The live chart point of a GPU not read is a gap, as in the stored history, not a 0 %.
        point = {g["index"]: g for g in engine.gpus.point()["gpus"]}
        read = {g["label"]: g["index"] for g in engine.gpu_dicts()}
        assert (
            point[read["node-b:0"]]["util"] is None and point[read["node-b:0"]]["mem_used"] is None
        )
        assert point[read["node-a:0"]]["util"] is not None
        assert engine.health()["nodes"] == [
            {"name": "node-a", "alive": True, "gpus": 2, "usable": 2},
            {"name": "node-b", "alive": False, "gpus": 2, "usable": 0},
        ]
        assert any(h["nodes"][1]["alive"] is False for h in events(engine, "health"))
        assert lost.task_id in [t.task_id for t in engine.recovery()["last_session"]]
        # Restored, it waits for a node with 2 free GPUs, then runs there.
        await engine.restore(["on-b"])
        await settle()
        assert engine.get("on-b").state is TaskState.QUEUED
        assert reason(engine, "on-b") == (
            "needs 2 GPUs on one node; none free; GPUs node-a:0, node-a:1 in use by on-a; "
            f"GPUs node-b:0, node-b:1 unavailable ({LEFT})"
        )
        ex.finish("on-a")
        await settle()
        assert engine.get("on-b").state is TaskState.RUNNING
        assert engine.get("on-b").nodes == ["node-a"]

    run(tmp_path, body)


def test_a_gang_loses_all_of_itself_when_one_of_its_nodes_leaves(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, gpus: FakeGpuBackend) -> None:
        await submit(engine, n_gpus=1, n_nodes=2, task_id="gang")
        assert engine.get("gang").nodes == ["node-a", "node-b"]
        gpus.remove_node("node-a")
        ex.node_left("node-a")
        await settle()
        assert engine.get("gang").state is TaskState.LOST
        assert all(not slot.task_ids for slot in engine.gpus.in_order())
        await engine.restore(["gang"])
        await settle()
        assert reason(engine, "gang") == "needs 2 nodes but ANT has only 1"

    run(tmp_path, body)


def test_a_node_that_joins_brings_its_gpus_and_waiting_tasks_start(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, gpus: FakeGpuBackend) -> None:
        await submit(engine, n_gpus=2, n_nodes=2, task_id="gang")
        assert reason(engine, "gang") == "needs 2 nodes but ANT has only 1"
        assert [g["label"] for g in engine.gpu_dicts()] == ["node-a:0", "node-a:1"]
        assert gpus.add_node("node-c", 2) == [2, 3]
        ex.wake()
        await settle()
        gang = engine.get("gang")
        assert gang.state is TaskState.RUNNING
        assert (gang.nodes, gang.gpu_ids) == (["node-a", "node-c"], [0, 1, 2, 3])
        assert [g["label"] for g in engine.gpu_dicts()] == [
            "node-a:0",
            "node-a:1",
            "node-c:0",
            "node-c:1",
        ]
        assert events(engine, "health")[-1]["nodes"][-1] == {
            "name": "node-c",
            "alive": True,
            "gpus": 2,
            "usable": 2,
        }

    run(tmp_path, body, FakeGpuBackend(2, nodes={"node-a": 2}))


def test_a_node_that_joins_is_seen_on_the_next_sample_too(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, gpus: FakeGpuBackend) -> None:
        await submit(engine, n_gpus=3, task_id="three")
        gpus.add_node("node-b", 4)
        assert engine.gpus.refresh()  # what the monitor loop does after each sample
        engine._sampled(True)
        await settle()
        three = engine.get("three")
        assert (three.state, three.nodes, three.gpu_ids) == (
            TaskState.RUNNING,
            ["node-b"],
            [2, 3, 4],
        )
        assert ex.placement("three") == (RankPlacement("node-b", (2, 3, 4), (0, 1, 2)),)

    run(tmp_path, body, FakeGpuBackend(2, nodes={"node-a": 2}))


def test_toggles_by_label_survive_a_node_leaving_and_ant_restarting(tmp_path: Path) -> None:
    async def main() -> None:
        ex, gpus = FakeExecutor(), two_nodes()
        async with engine_for(tmp_path, ex, gpus) as engine:
            gpu = await engine.set_gpu_enabled("node-b:1", False)
            assert (gpu["index"], gpu["enabled"], gpu["state"]) == (3, False, "disabled")
            assert (await engine.set_gpu_enabled("2", False))["label"] == "node-b:0"
            await engine.set_gpu_enabled(2, True)
            with pytest.raises(GpuNotFound, match="node-x:0"):
                await engine.set_gpu_enabled("node-x:0", False)
            with pytest.raises(GpuNotFound):
                await engine.set_gpu_enabled(9, False)
            gpus.remove_node("node-b")
            ex.node_left("node-b")
            gpus.add_node("node-b", 2)
            ex.wake()
            await settle()
            by_label = {g["label"]: g for g in engine.gpu_dicts()}
            assert by_label["node-b:1"]["enabled"] is False
            assert by_label["node-b:0"]["state"] == "free"
        # Next start: the cluster numbers node-b's GPUs differently; the toggle follows the label.
        backend = FakeGpuBackend(4, nodes={"node-b": 2, "node-a": 2})
        async with engine_for(tmp_path, ex, backend) as engine:
            by_label = {g["label"]: g for g in engine.gpu_dicts()}
            assert by_label["node-b:1"]["index"] == 1
            assert [label for label, g in by_label.items() if not g["enabled"]] == ["node-b:1"]

    asyncio.run(main())


# ---------------------------------------------------------------------------- availability


def test_nothing_starts_while_the_executor_is_cut_off(tmp_path: Path) -> None:
    why = "Ray cluster at 127.0.0.1:6379 unreachable since 17:32:01"

    async def body(engine: Engine, ex: FakeExecutor, gpus: FakeGpuBackend) -> None:
        await submit(engine, n_gpus=1, task_id="before")
        ex.set_available(why)
        await settle()
        await submit(engine, n_gpus=1, task_id="gpu")
        await submit(engine, n_gpus=0, task_id="cpu")
        assert engine.get("gpu").state is TaskState.QUEUED
        assert engine.get("cpu").state is TaskState.QUEUED
        assert reason(engine, "gpu") == why and reason(engine, "cpu") == why
        assert ex.started == ["before"]
        health = engine.health()
        assert health["status"] == "degraded"
        assert health["executor"] == {"name": "fake", "available": False, "detail": why}
        assert events(engine, "health")[-1]["executor"]["detail"] == why
        # Running tasks are left alone; their ends are still recorded.
        ex.finish("before")
        await settle()
        assert engine.get("before").state is TaskState.SUCCEEDED
        ex.set_available(None)
        await settle()
        assert engine.get("gpu").state is TaskState.RUNNING
        assert engine.get("cpu").state is TaskState.RUNNING
        assert events(engine, "health")[-1]["executor"]["available"] is True
        assert engine.health()["status"] == "ok"

    run(tmp_path, body)


def test_a_lost_task_found_after_a_restart_stays_lost(tmp_path: Path) -> None:
    async def main() -> None:
        ex, gpus = FakeExecutor(), two_nodes()
        async with engine_for(tmp_path, ex, gpus) as engine:
            await submit(engine, n_gpus=1, task_id="t")
            engine.running.clear()  # ANT dies: nothing more is recorded
        ex.lose("t", "node node-a died")
        async with engine_for(tmp_path, ex, two_nodes()) as engine:
            task = engine.get("t")
            assert (task.state, task.reason) == (TaskState.LOST, "node node-a died")
            assert engine.doctor()["ok"]

    asyncio.run(main())
