"""The engine in-process, with a real SQLite file and the fake executor: races and store faults
in any interleaving we choose, in milliseconds. Each test ends with the self-check."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ant_scheduler.core.errors import (
    DuplicateTaskId,
    InvalidTransition,
    PayloadTooLarge,
    StoreUnavailable,
    TaskNotFound,
)
from ant_scheduler.core.task import Task, TaskState
from ant_scheduler.engine import Engine
from ant_scheduler.executors.fake import FakeExecutor
from ant_scheduler.monitor.fake import FakeGpuBackend
from ant_scheduler.settings import Settings
from ant_scheduler.store import Store
from ant_scheduler.submissions import SUBMIT_CHUNK

T = TypeVar("T")


def settings(tmp: Path, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "LOGGER_log_dir": str(tmp / "logs"),
        "LOGGER_log_to_stdout": False,
        "MONITORING_refresh_interval": 3600,
        "step_interval": 3600,
        "RUNNER_kill_grace_seconds": 0,
        "STORE_retry_seconds": 0.3,
    }
    base.update(changes)
    return Settings().replace(**base)


@asynccontextmanager
async def engine_for(
    tmp: Path, executor: FakeExecutor | None = None, **changes: Any
) -> AsyncIterator[tuple[Engine, FakeExecutor]]:
    ex = executor or FakeExecutor()
    store = Store(tmp / "state" / "ant.db")
    engine = Engine(settings(tmp, **changes), store, ex, FakeGpuBackend(4), launch_dir=str(tmp))
    await engine.start()
    try:
        yield engine, ex
    finally:
        await engine.stop()
        store.close()


def run(tmp: Path, body: Callable[[Engine, FakeExecutor], Awaitable[T]], **changes: Any) -> T:
    async def main() -> T:
        async with engine_for(tmp, **changes) as (engine, ex):
            result = await asyncio.wait_for(body(engine, ex), 30)
            await settle()
            report = engine.doctor()
            assert report["ok"], report["problems"]
            return result

    return asyncio.run(main())


async def settle() -> None:
    """Let every pending pass and callback run."""
    for _ in range(20):
        await asyncio.sleep(0)


def stored(tmp: Path) -> dict[str, str]:
    db = sqlite3.connect(tmp / "state" / "ant.db")
    try:
        return dict(db.execute("SELECT task_id, state FROM tasks").fetchall())
    finally:
        db.close()


@asynccontextmanager
async def locked(tmp: Path) -> AsyncIterator[None]:
    """Another process holds the database's write lock (as `sqlite3 ant.db` in a shell can)."""
    db = sqlite3.connect(tmp / "state" / "ant.db", isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


async def submit(engine: Engine, command: str = "true", **kw: Any) -> Task:
    (task,) = await engine.submit(command, **kw)
    await settle()
    return task


# ---------------------------------------------------------------------------- ends and deletes


def test_a_delete_in_the_instant_a_task_ends_is_settled_by_the_end_first(tmp_path: Path) -> None:
    """The rule: an end the executor has reported is recorded before any later command runs, so
    the delete applies to the finished task; every later change is still recorded."""

    async def body(engine: Engine, ex: FakeExecutor) -> None:
        await submit(engine, n_gpus=1, task_id="t")
        task = engine.get("t")
        assert task.state is TaskState.RUNNING
        with pytest.raises(InvalidTransition, match="running; kill it first"):
            await engine.delete("t")
        ex.finish("t", 0)  # reported; the pass that records it has not run yet
        await engine.delete("t")
        assert "t" not in stored(tmp_path)
        with pytest.raises(TaskNotFound):
            engine.get("t")
        assert not engine.gpus.slots[task.gpu_ids[0]].task_ids  # its GPU is free
        await submit(engine, n_gpus=1, task_id="after")
        ex.finish("after", 3)
        await settle()
        assert stored(tmp_path) == {"after": "failed"}

    run(tmp_path, body)


def test_many_ends_and_deletes_interleaved_never_break_later_saves(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor) -> None:
        await engine.submit("\n".join(f"ant_task_id=t{i} true" for i in range(60)), mode="multi")
        await settle()
        deleted = set()
        for round_no in range(200):
            running = sorted(ex.running_ids())
            if not running:
                break
            for task_id in running[:3]:
                ex.finish(task_id, round_no % 2)
                if round_no % 3 == 0:
                    await engine.delete(task_id)
                    deleted.add(task_id)
            await settle()
        rows = stored(tmp_path)
        assert set(rows) == {f"t{i}" for i in range(60)} - deleted
        assert set(rows.values()) <= {"succeeded", "failed"}

    run(tmp_path, body)


# ---------------------------------------------------------------------------- a locked database


def test_an_end_that_cannot_be_recorded_keeps_the_gpus_until_it_is(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor) -> None:
        await submit(engine, n_gpus=4, task_id="first")
        await submit(engine, n_gpus=4, task_id="second")
        first = engine.get("first")
        async with locked(tmp_path):
            ex.finish("first", 0)
            for _ in range(10):
                await asyncio.sleep(0.03)  # passes fail and are retried meanwhile
            assert ex.started == ["first"]  # no GPU handed on while the end is not durable
            assert all(engine.gpus.slots[i].task_ids == ["first"] for i in first.gpu_ids)
            assert engine.get("first").state is TaskState.RUNNING
        for _ in range(100):
            await asyncio.sleep(0.02)
            if ex.started == ["first", "second"]:
                break
        assert stored(tmp_path) == {"first": "succeeded", "second": "running"}

    run(tmp_path, body)


def test_a_start_is_durable_before_the_spawn(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor) -> None:
        async with locked(tmp_path):
            with pytest.raises(StoreUnavailable, match="locked"):
                await engine.submit("true", task_id="never")
        assert stored(tmp_path) == {}
        await submit(engine, n_gpus=1, task_id="blocker", priority=5)
        await submit(engine, n_gpus=4, task_id="waits")
        async with locked(tmp_path):
            ex.finish("blocker")  # "waits" could start, but nothing may be recorded
            for _ in range(10):
                await asyncio.sleep(0.03)
            assert ex.started == ["blocker"]
        for _ in range(100):
            await asyncio.sleep(0.02)
            if "waits" in ex.started:
                break
        assert stored(tmp_path) == {"blocker": "succeeded", "waits": "running"}

    run(tmp_path, body)


def test_a_command_on_a_locked_database_fails_whole_with_503(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor) -> None:
        await submit(engine, n_gpus=4, task_id="runs")
        await submit(engine, n_gpus=1, task_id="waits")
        before = stored(tmp_path)
        async with locked(tmp_path):
            for action in (
                engine.kill("waits"),
                engine.promote("waits"),
                engine.delete("waits"),
                engine.restart("runs"),
                engine.submit("x\ny", mode="multi"),
            ):
                with pytest.raises(StoreUnavailable) as err:
                    await action
                assert err.value.status == 503 and err.value.code == "store_unavailable"
        assert stored(tmp_path) == before
        assert engine.get("waits").state is TaskState.QUEUED
        assert engine.queue_info(engine.get("waits"))[0] == 1

    run(tmp_path, body)


# ---------------------------------------------------------------------------- launches


def test_one_bad_launch_fails_that_task_alone(tmp_path: Path) -> None:
    ex = FakeExecutor()
    ex.fail_next["b"] = "cannot open log file: it is a symbolic link"
    ex.crash_next["c"] = RuntimeError("something nobody expected")

    async def body(engine: Engine, ex: FakeExecutor) -> None:
        text = "\n".join(f"ant_task_id={i} ant_n_gpus=1 true" for i in "abcd")
        await engine.submit(text, mode="multi")
        await settle()
        states = {i: engine.get(i) for i in "abcd"}
        assert states["a"].state is TaskState.RUNNING
        assert states["d"].state is TaskState.RUNNING
        assert states["b"].state is TaskState.FAILED
        assert "symbolic link" in (states["b"].reason or "")
        assert states["c"].state is TaskState.FAILED
        assert "RuntimeError: something nobody expected" in (states["c"].reason or "")
        assert stored(tmp_path) == {"a": "running", "b": "failed", "c": "failed", "d": "running"}
        held = {t for s in engine.gpus.slots.values() for t in s.task_ids}
        assert held == {"a", "d"}

    async def main() -> None:
        async with engine_for(tmp_path, ex) as (engine, _):
            await body(engine, ex)
            assert engine.doctor()["ok"]

    asyncio.run(main())


# ---------------------------------------------------------------------------- linearizability


def test_a_hundred_concurrent_restarts_make_one_copy(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor) -> None:
        await submit(engine, n_gpus=1, task_id="job")
        results = await asyncio.gather(
            *(engine.restart("job") for _ in range(100)), return_exceptions=True
        )
        copies = [r for r in results if isinstance(r, Task)]
        refused = [r for r in results if isinstance(r, InvalidTransition)]
        assert len(copies) == 1 and len(refused) == 99, results[:3]
        assert all("already restarted as 'job-restart-1'" in r.message for r in refused)
        await settle()
        rows = stored(tmp_path)
        assert rows == {"job": "killed", "job-restart-1": "running"}
        # Once the copy has run, the original can be restarted again: a new copy.
        ex.finish("job-restart-1")
        await settle()
        again = await engine.restart("job")
        assert again.task_id == "job-restart-2"

    run(tmp_path, body)


def test_concurrent_commands_on_one_task_behave_as_if_serialised(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor) -> None:
        await submit(engine, n_gpus=4, task_id="busy")
        for round_no in range(20):
            task_id = f"q{round_no}"
            await submit(engine, n_gpus=1, task_id=task_id)
            results = await asyncio.gather(
                engine.kill(task_id),
                engine.promote(task_id),
                engine.delete(task_id),
                engine.restart(task_id),
                return_exceptions=True,
            )
            assert not [r for r in results if not isinstance(r, (Task, type(None), Exception))]
            assert all(
                isinstance(r, (Task, type(None), InvalidTransition, TaskNotFound)) for r in results
            ), results
            # Serial order kill, promote, delete, restart: killed, then 409, deleted, 404.
            assert isinstance(results[0], Task) and results[0].state is TaskState.KILLED
            assert isinstance(results[1], InvalidTransition)
            assert results[2] is None
            assert isinstance(results[3], TaskNotFound)
            assert task_id not in stored(tmp_path)

    run(tmp_path, body)


# ---------------------------------------------------------------------------- processes left behind


def test_processes_left_behind_keep_the_gpus_until_they_end(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor) -> None:
        await submit(engine, n_gpus=4, task_id="parent")
        await submit(engine, n_gpus=1, task_id="next")
        ex.finish("parent", 0, leave=2)
        await settle()
        parent = engine.get("parent")
        assert parent.state is TaskState.SUCCEEDED  # the exit code is recorded at once
        assert stored(tmp_path)["parent"] == "succeeded"
        assert ex.started == ["parent"]  # but its GPUs are not handed on
        notes = {g["note"] for g in engine.gpu_dicts()}
        assert notes == {"2 stray processes of parent"}
        assert engine.task_dict(parent)["lingering_processes"] == 2
        with pytest.raises(InvalidTransition, match="still running; kill it first"):
            await engine.delete("parent")
        ex.end_strays("parent")
        await settle()
        assert ex.started == ["parent", "next"]
        assert engine.gpu_dicts()[1]["note"] is None

    run(tmp_path, body, RUNNER_wait_for_strays=True)


def test_kill_ends_what_a_finished_task_left_behind(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor) -> None:
        await submit(engine, n_gpus=2, task_id="t")
        ex.finish("t", 0, leave=1)
        await settle()
        task = await engine.kill("t")  # not "nothing to kill"
        assert task.state is TaskState.SUCCEEDED
        assert ex.lingering("t") == 0
        assert not any(s.task_ids for s in engine.gpus.slots.values())
        with pytest.raises(InvalidTransition, match="nothing to kill"):
            await engine.kill("t")

    run(tmp_path, body, RUNNER_wait_for_strays=True)


def test_processes_left_behind_are_killed_after_the_grace(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor) -> None:
        await submit(engine, n_gpus=2, task_id="t")
        ex.finish("t", 0, leave=3)
        await settle()
        assert ex.lingering("t") == 3
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not ex.lingering("t"):
                break
        assert ex.lingering("t") == 0
        await settle()
        assert not any(s.task_ids for s in engine.gpus.slots.values())

    run(tmp_path, body, RUNNER_stray_grace_seconds=0.05)


# ---------------------------------------------------------------------------- restart of ANT


def test_a_start_record_without_a_pid_is_adopted_or_lost_never_rerun(tmp_path: Path) -> None:
    """ANT died between recording a start and learning the pid: the marker decides."""
    ex = FakeExecutor()

    async def first_life() -> None:
        async with engine_for(tmp_path, ex) as (engine, _):
            await submit(engine, n_gpus=1, task_id="alive")
            await submit(engine, n_gpus=1, task_id="gone")
            engine._unsaved_handles.clear()  # as if ANT died before writing the handles
            engine.running.clear()  # ... and so nothing is written at stop either
            engine._ended.clear()
        db = sqlite3.connect(tmp_path / "state" / "ant.db")
        # The handles as prepare() made them, before the start: no pid.
        db.execute("UPDATE tasks SET pid = NULL, handle = json_object('fake', task_id)")
        db.commit()
        db.close()

    asyncio.run(first_life())
    ex.procs["gone"].ended = True  # its process died while ANT was down, with no exit file
    ex.close()

    async def second_life() -> None:
        async with engine_for(tmp_path, ex) as (engine, _):
            assert engine.get("alive").state is TaskState.RUNNING
            assert engine.get("alive").pid == ex.procs["alive"].pid
            lost = engine.get("gone")
            assert lost.state is TaskState.LOST
            assert "while starting it" in (lost.reason or "")
            assert ex.started == ["alive", "gone"]  # nothing was started twice
            assert engine.doctor()["ok"], engine.doctor()["problems"]

    asyncio.run(second_life())


def test_processes_of_finished_tasks_keep_their_gpus_across_a_restart(tmp_path: Path) -> None:
    ex = FakeExecutor()

    async def first_life() -> None:
        async with engine_for(tmp_path, ex, RUNNER_wait_for_strays=True) as (engine, _):
            await submit(engine, n_gpus=2, task_id="t")
            ex.finish("t", 0, leave=2)
            await settle()

    asyncio.run(first_life())

    async def second_life() -> None:
        async with engine_for(tmp_path, ex, RUNNER_wait_for_strays=True) as (engine, _):
            await submit(engine, n_gpus=4, task_id="big")
            assert engine.get("big").state is TaskState.QUEUED
            assert engine.recovery_summary["left_processes"] == 1
            assert engine.gpus.slots[0].task_ids == ["t"]
            ex.end_strays("t")
            await settle()
            assert engine.get("big").state is TaskState.RUNNING

    asyncio.run(second_life())


# ---------------------------------------------------------------------------- big submissions


def test_a_large_submission_is_stored_in_chunks_while_the_loop_serves_others(
    tmp_path: Path,
) -> None:
    async def body(engine: Engine, ex: FakeExecutor) -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        other = asyncio.create_task(ticker())
        n = SUBMIT_CHUNK * 2 + 17
        text = "\n".join(f"ant_task_id=big-{i} ant_n_gpus=8 true" for i in range(n))
        tasks = await engine.submit(text, mode="multi")
        other.cancel()
        assert len(tasks) == n and ticks > 3  # the loop ran others between the chunks
        assert len(stored(tmp_path)) == n
        assert engine.queue_info(engine.get(f"big-{n - 1}"))[0] == n
        events = engine.events.events_after(0)
        assert not [e for e in events if e.type == "task_added"]  # one queue event instead
        queue_events = [e for e in events if e.type == "queue"]
        assert queue_events[-1].data == {"queued": n, "added": n}

    run(tmp_path, body)


def test_a_large_submission_is_all_or_nothing(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor) -> None:
        await submit(engine, task_id="taken", n_gpus=8)
        n = SUBMIT_CHUNK * 2
        lines = [f"ant_task_id=x-{i} ant_n_gpus=8 true" for i in range(n)] + [
            "ant_task_id=taken true"
        ]
        with pytest.raises(DuplicateTaskId, match="taken"):
            await engine.submit("\n".join(lines), mode="multi")
        assert stored(tmp_path) == {"taken": "queued"}
        assert len(engine.queued) == 1

    run(tmp_path, body)


def test_an_unfinished_large_submission_is_dropped_at_the_next_start(tmp_path: Path) -> None:
    store = Store(tmp_path / "state" / "ant.db")
    half = [
        Task(f"h{i}", "true", "true", 0, {}, TaskState.QUEUED, 0, 1.0, queue_seq=i)
        for i in range(10)
    ]
    store.open_submission("tok")
    store.insert_tasks(half, staged="tok")
    store.close()

    async def body(engine: Engine, ex: FakeExecutor) -> None:
        assert stored(tmp_path) == {}
        assert ex.started == []

    run(tmp_path, body)


def test_a_shared_env_copied_into_every_line_is_capped(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor) -> None:
        big = "v" * 200_000
        text = "\n".join(f"echo {i}" for i in range(150))
        with pytest.raises(PayloadTooLarge, match="SERVER_max_expanded_bytes") as err:
            await engine.submit(text, mode="multi", env={"BIG": big})
        assert err.value.status == 413
        assert stored(tmp_path) == {}
        await engine.submit(text, mode="multi", env={"SMALL": "v" * 100})
        assert len(stored(tmp_path)) == 150

    run(tmp_path, body, SERVER_max_expanded_bytes=10_000_000)


def test_queue_events_do_not_carry_the_queue(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor) -> None:
        text = "\n".join(f"ant_n_gpus=1 true {i}" for i in range(1500))
        await engine.submit(text, mode="multi")
        await settle()
        sizes = [len(e.wire) for e in engine.events.events_after(0) if e.type == "queue"]
        assert sizes and max(sizes) < 200

    run(tmp_path, body)


# ---------------------------------------------------------------------------- the self-check


def test_the_self_check_sees_a_store_that_disagrees(tmp_path: Path) -> None:
    async def main() -> None:
        async with engine_for(tmp_path) as (engine, ex):
            await submit(engine, n_gpus=1, task_id="r")
            await submit(engine, n_gpus=8, task_id="q")
            assert engine.doctor()["ok"]
            db = sqlite3.connect(tmp_path / "state" / "ant.db")
            db.execute("UPDATE tasks SET state = 'queued' WHERE task_id = 'r'")
            db.execute("UPDATE tasks SET state = 'held' WHERE task_id = 'q'")
            db.commit()
            db.close()
            report = engine.doctor()
            assert not report["ok"]
            text = "\n".join(report["problems"])
            assert "the store says it does not" in text and "'q' is queued only in" in text
            ex.procs["r"].ended = True  # and a process vanished without a report
            assert "no process of it is watched" in "\n".join(engine.doctor()["problems"])

    asyncio.run(main())


# ------------------------------------------------------------------ flushing to disk (P10)


def test_a_submit_is_answered_once_its_tasks_are_on_disk(tmp_path: Path) -> None:
    """The insert, the start and the end skip the fsync on the loop; a flush in a thread makes
    them durable, and a submit is answered only after one covering it has ended."""

    async def body(engine: Engine, ex: FakeExecutor) -> None:
        store = engine.store
        syncs: list[int] = []
        real_sync = store.sync

        def counting_sync() -> None:
            syncs.append(store.committed)
            real_sync()

        store.sync = counting_sync  # type: ignore[method-assign]
        before = store.committed
        await engine.submit("true", n_gpus=1, task_id="a")
        assert store.committed >= before + 2  # the insert and the start, without an fsync
        assert store.flushed >= store.committed  # on disk before the answer
        assert syncs and syncs[-1] >= before + 2
        assert engine.get("a").state is TaskState.RUNNING  # started before the answer
        ex.finish("a", 0)
        await settle()
        await asyncio.sleep(0.05)  # the flush thread
        await settle()
        assert not store.unsynced  # the end was flushed without anyone waiting for it

    run(tmp_path, body)


def test_a_flush_that_fails_is_said_and_retried(tmp_path: Path) -> None:
    """A disk that refuses the fsync (EIO): the submit answers 503 saying what happened to its
    tasks (queued, maybe not durable), and the flush is retried until it works."""

    async def body(engine: Engine, ex: FakeExecutor) -> None:
        store = engine.store
        real_sync = store.sync
        failing = [True]

        def sync() -> None:
            if failing[0]:
                raise StoreUnavailable("cannot flush the database to disk (Input/output error)")
            real_sync()

        store.sync = sync  # type: ignore[method-assign]
        with pytest.raises(StoreUnavailable, match="1 task queued, but cannot flush"):
            await engine.submit("true", n_gpus=1, task_id="a")
        assert engine.get("a").state is TaskState.RUNNING  # it is there, and ran
        assert store.unsynced
        failing[0] = False
        for _ in range(100):  # retried every RETRY_MAX_DELAY
            await asyncio.sleep(0.05)
            if not store.unsynced:
                break
        assert not store.unsynced
        ex.finish("a", 0)

    run(tmp_path, body)
