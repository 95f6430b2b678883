"""Tags in the engine, in-process (fake executor, real SQLite): submit with tags, filter by them,
act on a tag's tasks, and pause one tag — across a restart of ANT too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ant_scheduler import scheduler
from ant_scheduler.core.errors import InvalidQuery, TaskRejected
from ant_scheduler.core.task import TaskState
from ant_scheduler.engine import Engine
from ant_scheduler.executors.fake import FakeExecutor
from tests.unit.test_engine import Clock, engine_for, run
from tests.unit.test_engine_integrity import settle


def ids(engine: Engine, **filters: object) -> list[str]:
    tasks, total = engine.list_tasks(**filters)  # type: ignore[arg-type]
    assert total == len(tasks)
    return sorted(t.task_id for t in tasks)


def test_tags_are_stored_listed_and_filtered(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("a", task_id="a", tags=["sweep", "lr-1"])
        text = "ant_tags=lr-2 b\nant_tags='lr-2, extra' ant_task_id=c c\nd"
        await engine.submit(text, mode="multi", task_id="[uuid]", tags=["sweep"])
        await settle()
        assert engine.get("a").tags == ["sweep", "lr-1"]
        by_command = {t.command: t.tags for t in engine.list_tasks()[0]}
        # the field's tags, then the line's own (they add up, duplicates once)
        assert by_command == {
            "a": ["sweep", "lr-1"],
            "b": ["sweep", "lr-2"],
            "c": ["sweep", "lr-2", "extra"],
            "d": ["sweep"],
        }
        assert len(ids(engine, tags=["sweep"])) == 4
        assert ids(engine, tags=["lr-2", "extra"]) == ["c"]  # repeated: all of them
        assert ids(engine, tags=["nobody"]) == []
        ex.finish("a", 1)
        await settle()
        assert ids(engine, tags=["lr-1"], states=[TaskState.FAILED]) == ["a"]
        assert ids(engine, tags=["lr-1"], states=[TaskState.FAILED], sort="task_id") == ["a"]
        assert "ant_tags=sweep,lr-1" in engine.task_dict(engine.get("a"))["copy_command"]
        assert {t["tag"]: t["tasks"] for t in engine.tags()} == {
            "extra": 1,
            "lr-1": 1,
            "lr-2": 2,
            "sweep": 4,
        }
        with pytest.raises(InvalidQuery):
            engine.list_tasks(tags=["bad tag"])

    run(tmp_path, body)


@pytest.mark.parametrize(
    "tags",
    [["has space"], ["-dash-first"], ["x" * 65], [f"t{i}" for i in range(17)], ["a,b"], [""]],
)
def test_bad_tags_are_refused_and_nothing_is_stored(tmp_path: Path, tags: list[str]) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        with pytest.raises(TaskRejected):
            await engine.submit("a", tags=tags)
        with pytest.raises(TaskRejected):
            await engine.submit("ant_tags='ok,bad tag' a")
        assert engine.list_tasks()[1] == 0

    run(tmp_path, body)


def test_kill_delete_restart_restore_by_tag(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("r", n_gpus=4, task_id="runs", tags=["sw"])
        await engine.submit("q", n_gpus=4, task_id="waits", tags=["sw"])
        await engine.submit("o", n_gpus=4, task_id="other")
        await settle()
        assert engine.get("runs").state is TaskState.RUNNING
        done = await engine.kill_tag("sw")
        assert done["count"] == 2 and sorted(done["task_ids"]) == ["runs", "waits"]
        assert engine.get("runs").state is TaskState.KILLED
        assert engine.get("waits").state is TaskState.KILLED
        await settle()
        assert engine.get("other").state is TaskState.RUNNING  # untagged: untouched

        again = await engine.restart_tag("sw")
        assert again["count"] == 2 and sorted(again["queued_as"]) == [
            "runs-restart-1",
            "waits-restart-1",
        ]
        assert engine.get("runs-restart-1").tags == ["sw"]  # a copy keeps its tags
        # the copies are queued, the originals restarted already: nothing more to restart
        assert (await engine.restart_tag("sw"))["count"] == 0

        gone = await engine.delete_tag("sw")
        assert gone["count"] == 4 and gone["skipped"] == 0
        assert ids(engine, tags=["sw"]) == []
        assert engine.get("other").state is TaskState.RUNNING
        with pytest.raises(TaskRejected):
            await engine.kill_tag("no good")

    run(tmp_path, body)


def test_delete_by_tag_leaves_running_tasks(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("r", n_gpus=1, task_id="runs", tags=["t"])
        await engine.submit("q", n_gpus=1, task_id="done", tags=["t"])
        await settle()
        ex.finish("done", 0)
        await settle()
        gone = await engine.delete_tag("t")
        assert gone["task_ids"] == ["done"] and gone["skipped"] == 1
        assert engine.get("runs").state is TaskState.RUNNING

    run(tmp_path, body)


def test_restore_by_tag_after_a_restart(tmp_path: Path) -> None:
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        async with engine_for(tmp_path, ex, clock) as engine:
            await engine.submit("a", n_gpus=4, task_id="runs")
            await engine.submit("b", n_gpus=4, task_id="held-1", tags=["keep"])
            await engine.submit("c", n_gpus=4, task_id="held-2")
            await settle()
            engine.running.clear()  # ANT dies
        async with engine_for(tmp_path, ex, clock) as engine:
            assert engine.get("held-1").state is TaskState.HELD
            done = await engine.restore_tag("keep")
            assert done["task_ids"] == ["held-1"]
            assert engine.get("held-1").state is TaskState.QUEUED
            assert engine.get("held-2").state is TaskState.HELD

    asyncio.run(main())


def test_pausing_a_tag_holds_its_tasks_only_and_outlives_a_restart(tmp_path: Path) -> None:
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        async with engine_for(tmp_path, ex, clock) as engine:
            await engine.submit("r", n_gpus=1, task_id="runs", tags=["sw"])
            await settle()
            state = await engine.pause_tag("sw", True)
            assert state["paused"] is False
            assert state["paused_tags"] == [{"tag": "sw", "paused_at": clock.now}]
            assert engine.health()["paused_tags"] == state["paused_tags"]
            await engine.submit("w", n_gpus=1, task_id="waits", tags=["other", "sw"])
            await engine.submit("f", n_gpus=1, task_id="free", tags=["other"])
            await settle()
            assert engine.get("runs").state is TaskState.RUNNING  # running ones go on
            assert engine.get("free").state is TaskState.RUNNING
            assert engine.get("waits").state is TaskState.QUEUED
            # set aside: no pass reads it, and it says why
            assert "waits" in engine.aside and "waits" not in engine.queue
            assert engine.queue_info(engine.get("waits")) == (
                None,
                scheduler.tag_paused_reason("sw"),
            )
            assert await engine.pause_tag("sw", True) == state  # keeps its first time
            engine.running.clear()  # ANT dies
        async with engine_for(tmp_path, ex, clock, RECOVERY_auto_restore=True) as engine:
            assert engine.pause_state()["paused_tags"] == state["paused_tags"]
            await settle()
            assert engine.get("waits").state is TaskState.QUEUED
            assert "waits" in engine.aside
            assert engine.doctor()["ok"], engine.doctor()["problems"]
            resumed = await engine.pause_tag("sw", False)
            assert resumed["paused_tags"] == []
            await settle()
            assert engine.get("waits").state is TaskState.RUNNING
            assert not engine.aside

    asyncio.run(main())


def test_a_task_with_two_paused_tags_waits_for_both(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.pause_tag("a", True)
        await engine.pause_tag("b", True)
        await engine.submit("x", task_id="x", tags=["a", "b"])
        await engine.promote("x")  # alone in the order, aside: still fine
        await settle()
        await engine.pause_tag("a", False)
        await settle()
        assert engine.get("x").state is TaskState.QUEUED
        assert engine.queue_info(engine.get("x"))[1] == scheduler.tag_paused_reason("b")
        await engine.pause_tag("b", False)
        await settle()
        assert engine.get("x").state is TaskState.RUNNING
        with pytest.raises(TaskRejected):
            await engine.pause_tag("not ok", True)

    run(tmp_path, body)


def test_a_large_submission_of_a_paused_tag_waits_aside(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.pause_tag("big", True)
        text = "\n".join(f"ant_task_id=t{i} true" for i in range(2500))
        await engine.submit(text, mode="multi", tags=["big"])
        await engine.submit("true", task_id="small")
        await settle()
        assert len(engine.aside) == 2500 and len(engine.queue) == 0
        assert engine.get("small").state is TaskState.RUNNING
        await engine.kill_tag("big")
        assert not engine.aside and not engine.queued

    run(tmp_path, body)
