"""The P12 workflows together, in-process (fake executor, real SQLite): a task set aside for one
reason (its dependencies, a retry's backoff, a paused tag) meets another, and it still starts
exactly once, when all of them allow it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ant_scheduler import scheduler
from ant_scheduler.core.errors import InvalidTransition
from ant_scheduler.core.task import Dependency, TaskState
from ant_scheduler.engine import Engine
from ant_scheduler.executors.fake import FakeExecutor
from tests.unit.test_engine import Clock, run
from tests.unit.test_engine_integrity import settle


def reason(engine: Engine, task_id: str) -> str | None:
    return engine.queue_info(engine.get(task_id))[1]


def test_a_released_dependent_of_a_paused_tag_waits_for_the_tag(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.pause_tag("eval", True)
        await engine.submit("p", task_id="prep")
        await engine.submit("c", task_id="child", tags=["eval"], after=[Dependency("prep")])
        await settle()
        assert reason(engine, "child") == "waiting for prep (running)"
        try:
            await engine.move("child", to="top")
        except InvalidTransition as exc:
            assert "waiting" in exc.message
        else:
            raise AssertionError("a task set aside was moved")
        ex.finish("prep", 0)
        await settle()
        assert engine.get("child").state is TaskState.QUEUED  # released, but its tag is paused
        assert reason(engine, "child") == scheduler.tag_paused_reason("eval")
        assert engine.doctor()["problems"] == []
        await engine.pause_tag("eval", False)
        await settle()
        assert engine.get("child").state is TaskState.RUNNING
        assert ex.started.count("child") == 1

    run(tmp_path, body)


def test_a_retry_of_a_paused_tag_waits_for_the_tag_after_its_backoff(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("x", task_id="flaky", tags=["sweep"], retries=1, retry_backoff=0.01)
        await settle()
        await engine.pause_tag("sweep", True)
        ex.finish("flaky", 1)
        await settle()
        for _ in range(200):  # the backoff's timer is the loop's (real time): let it fire
            await asyncio.sleep(0.01)
            if "flaky" in engine.aside:
                break
        assert engine.get("flaky").state is TaskState.QUEUED and "flaky" in engine.aside
        assert reason(engine, "flaky") == scheduler.tag_paused_reason("sweep")
        assert engine.doctor()["problems"] == []
        await engine.pause_tag("sweep", False)
        await settle()
        assert engine.get("flaky").state is TaskState.RUNNING and engine.get("flaky").attempt == 2
        assert ex.started == ["flaky", "flaky"]

    run(tmp_path, body)
