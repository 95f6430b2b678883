"""GPU memory packing and placement through the engine (fake executor, fake GPUs of 16 GiB,
RUNNER_gpu_mem_reserve 1G): memory tasks share a GPU, whole-GPU tasks keep off it, the task keeps
its placement, and over-use is flagged — or killed with RUNNER_enforce_gpu_mem."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from ant_scheduler.core.task import TaskState
from ant_scheduler.engine import Engine
from ant_scheduler.executors.fake import FakeExecutor
from tests.unit.test_engine import Clock, engine_for, run
from tests.unit.test_engine_integrity import settle

G = 2**30


def events_of(engine: Engine, kind: str) -> list[dict[str, object]]:
    return [
        json.loads(e.data) if isinstance(e.data, str) else e.data
        for e in engine.events.events_after(0)
        if e.type == kind
    ]


def test_memory_tasks_share_a_gpu_and_whole_gpu_tasks_keep_off_it(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        for name in ("m1", "m2", "m3"):
            await engine.submit(f"python {name}.py", gpu_mem="6G", task_id=name)
        await engine.submit("python whole.py", n_gpus=1, task_id="w")
        await settle()
        got = {t: engine.get(t) for t in ("m1", "m2", "m3", "w")}
        assert all(t.state is TaskState.RUNNING for t in got.values())
        # 6 + 6 + 1 (reserve) <= 16 on GPU 0; a third 6 GiB task does not fit there: GPU 1.
        assert [got[t].gpu_ids for t in ("m1", "m2", "m3", "w")] == [[0], [0], [1], [2]]
        assert ex.procs["m2"].request.gpu_ids == (0,)  # CUDA_VISIBLE_DEVICES names GPU 0
        assert got["m1"].gpu_mem == 6 * G and got["m1"].n_gpus == 1
        assert got["m2"].placement == (
            "GPU 0 shared: declares 6 GiB, 6 GiB declared there already; 3 GiB left of 16 GiB "
            "(1 GiB reserve)"
        )
        assert got["w"].placement is None  # one whole GPU, no topology: nothing to explain
        assert engine.gpus.get(0).declared == {"m1": 6 * G, "m2": 6 * G}
        # A whole-GPU task waits rather than share GPU 0 or 1.
        await engine.submit("python w2.py", n_gpus=2, task_id="w2")
        await settle()
        reason = engine.queue_info(engine.get("w2"))[1]
        assert engine.get("w2").state is TaskState.QUEUED
        assert reason is not None and "GPUs 0, 1 shared by memory tasks" not in reason
        assert (
            "GPU 0 shared by memory tasks m1, m2" in reason
            and "GPU 1 shared by memory tasks m3" in reason
        )
        ex.finish("m1", 0)
        await settle()
        assert engine.get("w2").state is TaskState.QUEUED  # m2 still shares GPU 0
        ex.finish("m2", 0)
        await settle()
        assert engine.get("w2").gpu_ids == [0, 3]  # GPU 0 is whole again; 1 still shared
        assert engine.store.get_task("m2").placement == got["m2"].placement  # kept when ended

    run(tmp_path, body)


def test_a_memory_task_too_big_for_any_gpu_says_so_and_blocks_nobody(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("python big.py", gpu_mem="20G", task_id="big")
        await engine.submit("python small.py", gpu_mem="512M", task_id="small")
        await settle()
        assert engine.get("small").state is TaskState.RUNNING
        assert engine.queue_info(engine.get("big"))[1] == (
            "needs 20 GiB of GPU memory but the largest usable GPU has 16 GiB "
            "(15 GiB after the 1 GiB reserve)"
        )

    run(tmp_path, body)


def test_over_use_is_flagged_kept_with_the_task_and_told(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("python m.py", gpu_mem="4G", task_id="m")
        await engine.submit("python ok.py", gpu_mem="4G", task_id="ok")
        await settle()
        engine.gpus.task_gpu_mem.update({"m": 5 * G, "ok": 3 * G})  # as a sample attributes it
        engine.check_gpu_memory()
        assert engine.get("m").gpu_mem_over == 5 * G
        assert engine.get("ok").gpu_mem_over is None
        (told,) = events_of(engine, "gpu_mem_over")
        assert told == {
            "task_id": "m",
            "gpu_mem": 4 * G,
            "used": 5 * G,
            "gpu_ids": [0],
            "killed": False,
        }
        engine.gpus.task_gpu_mem["m"] = 6 * G
        engine.check_gpu_memory()  # the most seen goes up; told once
        assert engine.get("m").gpu_mem_over == 6 * G and len(events_of(engine, "gpu_mem_over")) == 1
        assert engine.get("m").state is TaskState.RUNNING  # not enforced: flagged only
        ex.finish("m", 0)
        await settle()
        assert engine.store.get_task("m").gpu_mem_over == 6 * G  # written with its end

    run(tmp_path, body)


def test_enforce_gpu_mem_kills_the_task_and_it_ends_failed(tmp_path: Path) -> None:
    async def main() -> None:
        ex, clock = FakeExecutor(), Clock()
        async with engine_for(tmp_path, ex, clock, RUNNER_enforce_gpu_mem=True) as engine:
            await engine.submit("python m.py", gpu_mem="4G", task_id="m", retries=2)
            await engine.submit("python whole.py", n_gpus=1, task_id="whole")
            await settle()
            engine.gpus.task_gpu_mem.update({"m": 9 * G, "whole": 15 * G})
            engine.check_gpu_memory()
            await asyncio.sleep(0.05)
            await settle()
            m = engine.get("m")
            # Failed with the reason; a retry (failure) queues it again, placement reset at start.
            assert m.attempts[0].state is TaskState.FAILED
            assert m.attempts[0].reason == (
                "used 9 GiB of GPU memory, more than the 4 GiB it declared (RUNNER_enforce_gpu_mem)"
            )
            assert events_of(engine, "gpu_mem_over")[0]["killed"] is True
            assert engine.get("whole").state is TaskState.RUNNING  # declared nothing: untouched

    asyncio.run(main())


def test_a_restart_copy_keeps_gpu_mem_but_not_the_last_runs_placement(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("python m.py", gpu_mem="2G", task_id="m")
        await settle()
        engine.gpus.task_gpu_mem["m"] = 3 * G
        engine.check_gpu_memory()
        ex.finish("m", 1)
        await settle()
        copy = await engine.restart("m")
        assert copy.gpu_mem == 2 * G and copy.placement is None and copy.gpu_mem_over is None
        assert "ant_gpu_mem=2G" in engine.task_dict(engine.get("m"))["copy_command"]

    run(tmp_path, body)


def test_stored_gpu_mem_survives_a_restart_of_ant(tmp_path: Path) -> None:
    async def main() -> None:
        ex, clock = FakeExecutor(), Clock()
        async with engine_for(tmp_path, ex, clock) as engine:
            await engine.submit("python big.py", n_gpus=4, task_id="big")
            await engine.submit("python m.py", gpu_mem="3G", task_id="m")
            await settle()
            assert engine.get("m").state is TaskState.QUEUED
        async with engine_for(tmp_path, ex, clock) as engine:
            await settle()
            assert engine.get("m").gpu_mem == 3 * G  # held after the restart, read back
            await engine.restore(["m"])
            ex.finish("big", 0)
            await settle()
            assert engine.get("m").state is TaskState.RUNNING
            assert engine.gpus.get(0).declared == {"m": 3 * G}

    asyncio.run(main())
