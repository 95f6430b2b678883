"""The engine's everyday behaviour, in-process: a real SQLite file, fake GPUs, the fake executor
and a fixed clock. Milliseconds per test; the race and fault cases are in test_engine_integrity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ant_scheduler import scheduler
from ant_scheduler.core.errors import GpuNotFound, InvalidTransition
from ant_scheduler.core.task import TaskState
from ant_scheduler.engine import Engine
from ant_scheduler.executors.fake import FakeExecutor
from ant_scheduler.monitor.fake import FakeGpuBackend
from ant_scheduler.store import Store
from tests.unit.test_engine_integrity import settings, settle


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def engine_for(
    tmp: Path, ex: FakeExecutor, clock: Clock, **changes: Any
) -> AsyncIterator[Engine]:
    store = Store(tmp / "state" / "ant.db")
    engine = Engine(
        settings(tmp, **changes), store, ex, FakeGpuBackend(4), launch_dir=str(tmp), clock=clock
    )
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()
        store.close()


def run(tmp: Path, body: Callable[[Engine, FakeExecutor, Clock], Awaitable[None]]) -> None:
    async def main() -> None:
        ex, clock = FakeExecutor(), Clock()
        async with engine_for(tmp, ex, clock) as engine:
            await body(engine, ex, clock)
            await settle()
            assert engine.doctor()["ok"], engine.doctor()["problems"]

    asyncio.run(main())


def test_submit_dispatch_and_exit(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        (task,) = await engine.submit("python train.py", n_gpus=2, task_id="train")
        assert task.state is TaskState.QUEUED and task.created_at == clock.now
        await settle()
        running = engine.get("train")
        assert running.state is TaskState.RUNNING and running.gpu_ids == [0, 1]
        assert ex.procs["train"].request.gpu_ids == (0, 1)
        assert running.pid == ex.procs["train"].pid
        ex.write("train", "epoch 1\repoch 2\n")
        assert engine.terminal(running) == ["epoch 2"]
        clock.now += 60
        ex.finish("train", 0)
        await settle()
        done = engine.get("train")
        assert done.state is TaskState.SUCCEEDED and done.exit_code == 0
        assert done.finished_at == clock.now
        assert not any(slot.task_ids for slot in engine.gpus.in_order())

    run(tmp_path, body)


def test_queue_order_reasons_and_promote(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("sleep 1", n_gpus=4, task_id="big")
        await settle()
        for name in ("a", "b", "c"):
            await engine.submit("true", n_gpus=1, task_id=name)
        await settle()
        assert [engine.queue_info(engine.get(n))[0] for n in "abc"] == [1, 2, 3]
        first = engine.queue_info(engine.get("a"))[1]
        assert first is not None and "in use by big" in first
        assert engine.queue_info(engine.get("b"))[1] == "waiting behind a (fifo)"
        await engine.promote("c")
        assert [engine.queue_info(engine.get(n))[0] for n in "cab"] == [1, 2, 3]
        ex.finish("big")
        await settle()
        assert {t for t in "abc" if engine.get(t).state is TaskState.RUNNING} == {"a", "b", "c"}

    run(tmp_path, body)


def test_kill_restart_and_their_records(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("sleep 100", n_gpus=1, task_id="job")
        await settle()
        killed = await engine.kill("job")
        assert killed.state is TaskState.KILLED and killed.exit_code == 128 + 15
        copy = await engine.restart("job")
        assert copy.task_id == "job-restart-1" and copy.command == "sleep 100"
        await settle()
        assert engine.get("job-restart-1").state is TaskState.RUNNING
        assert engine.get("job").restarted_as == "job-restart-1"
        assert engine.get("job-restart-1").restarted_from == "job"  # its lineage
        assert engine.get("job").restarted_from is None
        with pytest.raises(InvalidTransition, match="nothing to kill"):
            await engine.kill("job")

    run(tmp_path, body)


def test_recovery_after_a_restart_of_ant(tmp_path: Path) -> None:
    """The same fake executor across two engines: running is re-adopted, ended is recorded with
    its code, vanished is lost, queued is held."""
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        async with engine_for(tmp_path, ex, clock) as engine:
            await engine.submit("a", n_gpus=1, task_id="keeps")
            await engine.submit("b", n_gpus=1, task_id="ends")
            await engine.submit("c", n_gpus=1, task_id="vanishes")
            await engine.submit("d", n_gpus=4, task_id="waits")
            await settle()
            engine.running.clear()  # ANT dies: nothing more is recorded
        ex.finish("ends", 5)
        ex.procs["vanishes"].ended = True  # no exit code anywhere
        async with engine_for(tmp_path, ex, clock) as engine:
            states = {t: engine.get(t).state for t in ("keeps", "ends", "vanishes", "waits")}
            assert states == {
                "keeps": TaskState.RUNNING,
                "ends": TaskState.FAILED,
                "vanishes": TaskState.LOST,
                "waits": TaskState.HELD,
            }
            assert engine.get("ends").exit_code == 5
            assert engine.recovery_summary["adopted"] == 1
            ex.finish("keeps", 0)  # still watched
            await settle()
            assert engine.get("keeps").state is TaskState.SUCCEEDED
            assert ex.started == ["keeps", "ends", "vanishes"]  # nothing ran twice

    asyncio.run(main())


def test_gpu_toggles_are_kept_across_restarts(tmp_path: Path) -> None:
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        async with engine_for(tmp_path, ex, clock) as engine:
            gpu = await engine.set_gpu_enabled(2, False)
            assert gpu["enabled"] is False and gpu["state"] == "disabled"
            with pytest.raises(GpuNotFound):
                await engine.set_gpu_enabled(9, False)
        async with engine_for(tmp_path, ex, clock) as engine:
            assert [g["enabled"] for g in engine.gpu_dicts()] == [True, True, False, True]
            await engine.submit("x", n_gpus=4, task_id="four")
            await settle()
            reason = engine.queue_info(engine.get("four"))[1]
            assert reason is not None and "GPU 2 disabled" in reason
            await engine.set_gpu_enabled(2, True)
            await settle()
            assert engine.get("four").state is TaskState.RUNNING

    asyncio.run(main())


def test_pause_starts_nothing_new_and_outlives_a_restart(tmp_path: Path) -> None:
    """A drain: running tasks go on, queued ones wait with the reason, until resume."""
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        async with engine_for(tmp_path, ex, clock) as engine:
            await engine.submit("a", n_gpus=1, task_id="runs")
            await settle()
            state = await engine.pause()
            assert state == {"paused": True, "paused_at": clock.now, "paused_tags": []}
            clock.now += 5
            assert await engine.pause() == state  # a second pause keeps the first time
            assert engine.health()["paused"] is True
            await engine.submit("b", n_gpus=1, task_id="waits")
            await settle()
            assert engine.get("waits").state is TaskState.QUEUED
            assert engine.queue_info(engine.get("waits"))[1] == scheduler.PAUSED_REASON
            ex.finish("runs", 0)  # running ones go on and end as usual
            await settle()
            assert engine.get("runs").state is TaskState.SUCCEEDED
            assert engine.get("waits").state is TaskState.QUEUED  # GPUs free, still paused
            engine.running.clear()  # ANT dies
        async with engine_for(tmp_path, ex, clock) as engine:
            assert engine.pause_state() == state
            await engine.restore(["waits"])
            await settle()
            assert engine.get("waits").state is TaskState.QUEUED
            assert await engine.resume() == {"paused": False, "paused_at": None, "paused_tags": []}
            await settle()
            assert engine.get("waits").state is TaskState.RUNNING
            assert engine.health()["paused"] is False
            assert ex.started == ["runs", "waits"]

    asyncio.run(main())


def test_a_timeout_kills_the_task_and_it_ends_timed_out(tmp_path: Path) -> None:
    """Counted from its start, also across a restart of ANT; a kill by the user stays killed."""
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        async with engine_for(tmp_path, ex, clock) as engine:
            await engine.submit("a", n_gpus=1, task_id="slow", timeout=0.2)
            await engine.submit("b", n_gpus=1, task_id="killed", timeout=0.2)
            await engine.submit("c", n_gpus=1, task_id="quick", timeout=0.2)
            await engine.submit("d", n_gpus=1, task_id="adopted", timeout=3600)
            await settle()
            assert engine.get("slow").timeout == 0.2
            await engine.kill("killed")
            ex.finish("quick", 0)
            await asyncio.sleep(0.4)  # the timers run on the loop's time
            await settle()
            slow = engine.get("slow")
            assert slow.state is TaskState.TIMED_OUT and slow.exit_code == 128 + 15
            assert slow.reason == "ran longer than its timeout (0.2s)"
            assert engine.get("killed").state is TaskState.KILLED
            assert engine.get("quick").state is TaskState.SUCCEEDED
            assert engine.get("adopted").state is TaskState.RUNNING
            engine.running.clear()  # ANT dies
        clock.now += 3600  # ...and comes back an hour after "adopted" started: past its timeout
        async with engine_for(tmp_path, ex, clock) as engine:
            assert engine.recovery_summary["adopted"] == 1
            await settle()
            await asyncio.sleep(0.05)
            await settle()
            assert engine.get("adopted").state is TaskState.TIMED_OUT
            assert ex.started == ["slow", "killed", "quick", "adopted"]  # nothing ran twice

    asyncio.run(main())
