"""Moving queued tasks (`ant move`) and renaming tasks (`ant rename`), in-process: the engine
with a real SQLite file, the fake executor and fake GPUs (see test_engine.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ant_scheduler.core.errors import (
    DuplicateTaskId,
    InvalidQuery,
    InvalidTransition,
    RenameFailed,
    TaskNotFound,
    TaskRejected,
)
from ant_scheduler.core.task import TaskState
from ant_scheduler.engine import Engine
from ant_scheduler.executors.fake import FakeExecutor
from tests.unit.test_engine import Clock, engine_for, run
from tests.unit.test_engine_integrity import settle


def queued_order(engine: Engine) -> list[str]:
    """The queue as the listing shows it, checked against the positions it gives."""
    tasks, _ = engine.list_tasks([TaskState.QUEUED], limit=1000)
    ids = [t.task_id for t in tasks]
    assert [engine.queue_info(t)[0] for t in tasks] == list(range(1, len(ids) + 1))
    stored = sorted(ids, key=lambda i: engine.store.get_task(i).queue_order_key())  # type: ignore[union-attr]
    assert stored == ids  # the store orders them the same way
    return ids


async def blocked_queue(engine: Engine, names: str) -> None:
    """A 4-GPU task runs on all four GPUs; 1-GPU tasks named by the letters wait behind it."""
    await engine.submit("sleep 100", n_gpus=4, task_id="big")
    await settle()
    for name in names:
        await engine.submit("true", n_gpus=1, task_id=name)
    await settle()


@pytest.mark.parametrize("policy", ["fifo", "backfill"])
def test_moves_reorder_the_queue_and_both_policies_start_in_that_order(
    tmp_path: Path, policy: str
) -> None:
    async def main() -> None:
        ex, clock = FakeExecutor(), Clock()
        async with engine_for(tmp_path, ex, clock, RUNNER_policy=policy) as engine:
            await blocked_queue(engine, "abcde")
            assert queued_order(engine) == list("abcde")
            moved = await engine.move("e", to="top")
            assert engine.queue_info(moved)[0] == 1
            assert queued_order(engine) == list("eabcd")
            await engine.move("a", to="bottom")
            assert queued_order(engine) == list("ebcda")
            await engine.move("d", before="b")
            assert queued_order(engine) == list("edbca")
            await engine.move("e", after="c")
            assert queued_order(engine) == list("dbcea")
            await engine.move("d", before="b")  # already there: nothing changes
            assert queued_order(engine) == list("dbcea")
            ex.finish("big", 0)
            await settle()
            assert ex.started == ["big", "d", "b", "c", "e"]  # four GPUs: "a" waits
            ex.finish("d", 0)
            await settle()
            assert ex.started[-1] == "a"
            assert engine.doctor()["ok"], engine.doctor()["problems"]

    asyncio.run(main())


def test_a_move_takes_the_priority_of_its_new_place(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await blocked_queue(engine, "")
        await engine.submit("true", n_gpus=1, task_id="urgent", priority=5)
        await engine.submit("true", n_gpus=1, task_id="low", priority=-3)
        await engine.submit("true", n_gpus=1, task_id="normal")
        await settle()
        assert queued_order(engine) == ["urgent", "normal", "low"]
        moved = await engine.move("low", before="normal")
        assert moved.priority == 0 and queued_order(engine) == ["urgent", "low", "normal"]
        moved = await engine.move("normal", to="top")
        assert moved.priority == 5 and queued_order(engine) == ["normal", "urgent", "low"]
        moved = await engine.move("urgent", to="bottom")
        assert moved.priority == 0 and queued_order(engine) == ["normal", "low", "urgent"]
        # A new task joins the end of its priority: after the one moved to the bottom too.
        await engine.submit("true", n_gpus=1, task_id="later")
        await settle()
        assert queued_order(engine) == ["normal", "low", "urgent", "later"]
        assert (await engine.promote("later")).priority == 5  # promote is a move to the top
        assert queued_order(engine)[0] == "later"

    run(tmp_path, body)


def test_many_moves_into_one_gap_spread_a_few_neighbours_not_the_queue(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        names = [f"t{i:02}" for i in range(40)]
        await engine.submit("sleep 100", n_gpus=4, task_id="big")
        await settle()
        await engine.submit(
            "\n".join(f"ant_task_id={n} true" for n in names), mode="multi", n_gpus=1
        )
        await settle()
        expected = list(names)
        widest = 0
        for i in range(60):  # always into the gap just before t20: it halves every time
            mover = names[(i * 7) % 40]
            if mover == "t20":
                continue
            before = engine.events.last_seq
            await engine.move(mover, before="t20")
            expected.remove(mover)
            expected.insert(expected.index("t20"), mover)
            changed = [e for e in engine.events.events_after(before) if e.type == "task_changed"]
            widest = max(widest, len(changed))
        assert queued_order(engine) == expected
        assert 1 < widest <= 8  # a spread happened, and it moved a handful of tasks

    run(tmp_path, body)


def test_what_cannot_be_moved(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await blocked_queue(engine, "ab")
        with pytest.raises(InvalidTransition, match="'big' is running; only queued"):
            await engine.move("big", to="top")
        with pytest.raises(InvalidTransition, match="'big' is running"):
            await engine.move("a", before="big")
        with pytest.raises(TaskNotFound):
            await engine.move("nope", to="top")
        with pytest.raises(TaskNotFound):
            await engine.move("a", after="nope")
        with pytest.raises(InvalidQuery, match="itself"):
            await engine.move("a", before="a")
        with pytest.raises(InvalidQuery, match="one of"):
            await engine.move("a", before="b", to="top")
        with pytest.raises(InvalidQuery, match="one of"):
            await engine.move("a")
        assert queued_order(engine) == ["a", "b"]

    run(tmp_path, body)


@pytest.mark.parametrize("auto_restore", [False, True])
def test_the_order_outlives_a_restart_of_ant(tmp_path: Path, auto_restore: bool) -> None:
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        async with engine_for(tmp_path, ex, clock, RECOVERY_auto_restore=auto_restore) as engine:
            await blocked_queue(engine, "abcd")
            await engine.move("d", to="top")
            await engine.move("a", after="b")
            assert queued_order(engine) == list("dbac")
            engine.running.clear()  # ANT dies
        async with engine_for(tmp_path, ex, clock, RECOVERY_auto_restore=auto_restore) as engine:
            if not auto_restore:
                await engine.restore(list("abcd"))  # held ones go back in their order
            assert queued_order(engine) == list("dbac")

    asyncio.run(main())


def test_rename_a_queued_task_keeps_its_place_and_tells_the_uis(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await blocked_queue(engine, "abc")
        seq = engine.events.last_seq
        renamed = await engine.rename("b", "b-renamed")
        assert renamed.task_id == "b-renamed" and renamed.state is TaskState.QUEUED
        assert queued_order(engine) == ["a", "b-renamed", "c"]
        with pytest.raises(TaskNotFound):
            engine.get("b")
        events = [(e.type, e.data) for e in engine.events.events_after(seq)]
        assert events[0] == ("task_removed", {"task_id": "b", "renamed_to": "b-renamed"})
        assert events[1][0] == "task_added" and events[1][1]["task_id"] == "b-renamed"
        assert events[1][1]["queue_position"] == 2
        ex.finish("big", 0)
        await settle()
        assert ex.started == ["big", "a", "b-renamed", "c"]

    run(tmp_path, body)


def test_rename_a_finished_task_moves_its_output_and_references(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("python train.py", n_gpus=1, task_id="job")
        await settle()
        ex.write("job", "epoch 1\n")
        ex.finish("job", 1)
        await settle()
        copy = await engine.restart("job")
        assert copy.task_id == "job-restart-1"
        renamed = await engine.rename("job", "lr-0.1")
        assert renamed.state is TaskState.FAILED and renamed.exit_code == 1
        assert engine.output(renamed).tail_bytes(100) == b"epoch 1\n"  # the output followed
        assert "job" not in ex.procs
        assert engine.get("job-restart-1").restarted_from == "lr-0.1"
        assert engine.store.get_task("job-restart-1").restarted_from == "lr-0.1"  # type: ignore[union-attr]
        await settle()
        ex.finish("job-restart-1", 0)
        await settle()
        await engine.rename("job-restart-1", "lr-0.1-again")
        assert engine.get("lr-0.1").restarted_as == "lr-0.1-again"
        assert engine.get("lr-0.1-again").restarted_from == "lr-0.1"

    run(tmp_path, body)


def test_rename_refusals_change_nothing(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await blocked_queue(engine, "ab")
        with pytest.raises(InvalidTransition, match="'big' is running"):
            await engine.rename("big", "huge")
        with pytest.raises(DuplicateTaskId, match="'b' is taken"):
            await engine.rename("a", "b")
        with pytest.raises(DuplicateTaskId, match="'big' is taken"):
            await engine.rename("a", "big")
        with pytest.raises(TaskRejected, match="may only contain"):
            await engine.rename("a", "a b")
        with pytest.raises(TaskRejected, match="must not start"):
            await engine.rename("a", "-a")
        with pytest.raises(TaskNotFound):
            await engine.rename("nope", "new")
        with pytest.raises(InvalidQuery, match="already has that id"):
            await engine.rename("a", "a")
        ex.finish("big", 0)
        await settle()
        ex.rename_error = OSError(28, "No space left on device")
        with pytest.raises(RenameFailed, match="No space left"):
            await engine.rename("big", "huge")
        assert engine.get("big").state is TaskState.SUCCEEDED
        assert not engine.store.exists("huge")
        assert queued_order(engine) == []  # a and b started meanwhile: the queue is empty

    run(tmp_path, body)


def test_a_held_task_is_renamed_and_restored_under_its_new_id(tmp_path: Path) -> None:
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        async with engine_for(tmp_path, ex, clock) as engine:
            await blocked_queue(engine, "a")
            engine.running.clear()  # ANT dies
        async with engine_for(tmp_path, ex, clock) as engine:
            assert engine.get("a").state is TaskState.HELD
            renamed = await engine.rename("a", "a2")
            assert renamed.state is TaskState.HELD
            [restored] = await engine.restore(["a2"])
            assert restored.task_id == "a2" and restored.state is TaskState.QUEUED
            with pytest.raises(TaskNotFound):
                await engine.restore(["a"])

    asyncio.run(main())
