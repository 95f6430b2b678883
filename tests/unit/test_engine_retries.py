"""Retries, in-process (real SQLite, fake GPUs and executor, a fixed clock): which ends are
retried, how many times, the backoff (also across a restart of ANT), a user's kill, the attempts
each with its own exit code and log, and that no end is recorded before the last attempt's."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ant_scheduler.core import retries
from ant_scheduler.core.errors import InvalidQuery, TaskRejected
from ant_scheduler.core.parsing import SubmitDefaults, format_copy_command, parse_submission
from ant_scheduler.core.task import Task, TaskSpec, TaskState
from ant_scheduler.engine import Engine
from ant_scheduler.executors.fake import FakeExecutor
from tests.unit.test_engine import Clock, engine_for, run
from tests.unit.test_engine_integrity import settle, stored


def states_published(engine: Engine, task_id: str) -> list[str]:
    """The states the task's events said, in order (what `ant wait` and the UI saw)."""
    return [
        e.data["state"]
        for e in engine.events.events_after(0)
        if e.type in ("task_added", "task_changed") and e.data.get("task_id") == task_id
    ]


def attempts_of(task: Task) -> list[tuple[int, TaskState, int | None]]:
    return [(a.attempt, a.state, a.exit_code) for a in task.attempts]


def test_a_failing_task_is_retried_until_it_succeeds(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("x", n_gpus=1, task_id="flaky", retries=3, retry_backoff=0)
        await settle()
        for code in (1, 2):
            clock.now += 10
            ex.finish("flaky", code)
            await settle()
        waiting = engine.get("flaky")
        assert waiting.state is TaskState.RUNNING and waiting.attempt == 3
        assert ex.procs["flaky"].request.attempt == 3  # the executor gives it a log of its own
        ex.write("flaky", "third time\n")
        ex.finish("flaky", 0)
        await settle()
        done = engine.get("flaky")
        assert done.state is TaskState.SUCCEEDED and done.exit_code == 0
        assert (done.attempt, done.retry_at, done.reason) == (3, None, None)
        assert attempts_of(done) == [
            (1, TaskState.FAILED, 1),
            (2, TaskState.FAILED, 2),
            (3, TaskState.SUCCEEDED, 0),
        ]
        assert [a.handle and a.handle["attempt"] for a in done.attempts] == [1, 2, 3]
        first = done.attempts[0]
        assert first.started_at is not None and first.finished_at == first.started_at + 10
        assert ex.started == ["flaky"] * 3
        # Between attempts it was queued, never ended: `ant wait` and dependents saw no end.
        assert states_published(engine, "flaky") == [
            "queued",
            "running",
            "queued",
            "running",
            "queued",
            "running",
            "succeeded",
        ]
        # Each attempt's output is asked for by its number; one it does not have is refused.
        assert engine.output(done, attempt=3) is not None
        with pytest.raises(InvalidQuery, match="attempts 1 to 3, not 4"):
            engine.output(done, attempt=4)
        # The store has it all (a restart reads the same).
        row = engine.store.get_task("flaky")
        assert row is not None and row.attempts == done.attempts and row.attempt == 3

    run(tmp_path, body)


def test_retries_run_out_and_the_last_attempt_decides(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("x", n_gpus=1, task_id="bad", retries=1, retry_backoff=0)
        await engine.submit("y", n_gpus=1, task_id="plain")
        await settle()
        ex.finish("bad", 1)
        ex.finish("plain", 3)
        await settle()
        ex.finish("bad", 7)
        await settle()
        bad = engine.get("bad")
        assert bad.state is TaskState.FAILED and bad.exit_code == 7 and bad.attempt == 2
        assert attempts_of(bad) == [(1, TaskState.FAILED, 1), (2, TaskState.FAILED, 7)]
        plain = engine.get("plain")  # no retries: it ends at once, its one attempt kept
        assert plain.state is TaskState.FAILED and attempts_of(plain) == [(1, TaskState.FAILED, 3)]
        assert stored(tmp_path) == {"bad": "failed", "plain": "failed"}

    run(tmp_path, body)


def test_each_condition_retries_only_what_it_names(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        common = {"n_gpus": 0, "retries": 1, "retry_backoff": 0.0}
        await engine.submit("a", task_id="lost-default", **common)  # failure only
        await engine.submit("b", task_id="lost-yes", retry_on=["lost"], **common)
        await engine.submit("c", task_id="fail-no", retry_on=["lost", "timeout"], **common)
        await engine.submit("d", task_id="slow", retry_on=["timeout"], timeout=0.05, **common)
        await settle()
        ex.lose("lost-default", "its node died")
        ex.lose("lost-yes", "its node died")
        ex.finish("fail-no", 1)
        await asyncio.sleep(0.2)  # "slow" times out (a loop timer)
        await settle()
        assert engine.get("lost-default").state is TaskState.LOST
        assert engine.get("fail-no").state is TaskState.FAILED
        again = engine.get("lost-yes")
        assert again.state is TaskState.RUNNING and again.attempt == 2
        assert attempts_of(again) == [(1, TaskState.LOST, None)]
        await asyncio.sleep(0.3)  # the second attempt of "slow" times out too: none left
        await settle()
        slow = engine.get("slow")
        assert slow.state is TaskState.TIMED_OUT and [a.state for a in slow.attempts] == [
            TaskState.TIMED_OUT,
            TaskState.TIMED_OUT,
        ]
        ex.finish("lost-yes", 0)
        await settle()
        assert engine.get("lost-yes").state is TaskState.SUCCEEDED

    run(tmp_path, body)


def test_the_backoff_keeps_it_queued_with_its_reason(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("x", n_gpus=1, task_id="later", retries=3, retry_backoff=3600)
        await engine.submit("y", n_gpus=1, task_id="soon", retries=1, retry_backoff=0.05)
        await settle()
        ex.finish("later", 1)
        ex.finish("soon", 1)
        await settle()
        later = engine.get("later")
        assert later.state is TaskState.QUEUED and later.attempt == 2
        assert later.retry_at == clock.now + 3600 and later.gpu_ids == []
        assert later.reason == "retrying in 1h (attempt 2 of 4; attempt 1 failed with exit 1)"
        clock.now += 600
        as_shown = engine.task_dict(later)
        assert as_shown["pending_reason"] == (
            "retrying in 50m (attempt 2 of 4; attempt 1 failed with exit 1)"
        )
        assert as_shown["queue_position"] is None  # not in the queue until its backoff is over
        assert engine.get("soon").state is TaskState.QUEUED
        await asyncio.sleep(0.15)  # "soon"'s backoff is over (a loop timer): it starts
        await settle()
        assert engine.get("soon").state is TaskState.RUNNING
        assert ex.started.count("later") == 1  # still waiting
        # A waiting task can be cancelled: it ends killed, with the attempts it ran.
        killed = await engine.kill("later")
        assert killed.state is TaskState.KILLED and attempts_of(killed) == [
            (1, TaskState.FAILED, 1)
        ]
        ex.finish("soon", 0)
        await settle()

    run(tmp_path, body)


def test_the_backoff_doubles_each_retry_up_to_an_hour() -> None:
    task = Task("t", "c", "c", 0, {}, TaskState.QUEUED, 0, 0.0, retry_backoff=30)
    assert [retries.backoff_seconds(task, k) for k in (1, 2, 3, 8, 60)] == [
        30,
        60,
        120,
        3600,
        3600,
    ]
    task.retry_backoff = 7200  # longer than the cap: it stays as asked
    assert retries.backoff_seconds(task, 3) == 7200
    task.retry_backoff = 0
    assert retries.backoff_seconds(task, 5) == 0


def test_a_users_kill_is_never_retried(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        everything = ["failure", "lost", "timeout"]
        await engine.submit(
            "x", n_gpus=1, task_id="k", retries=5, retry_on=everything, retry_backoff=0
        )
        await settle()
        done = await engine.kill("k")
        assert done.state is TaskState.KILLED
        assert attempts_of(done) == [(1, TaskState.KILLED, 128 + 15)]
        await settle()
        assert engine.get("k").state is TaskState.KILLED and ex.started == ["k"]

    run(tmp_path, body)


def test_a_restart_starts_a_fresh_series_and_keeps_the_old_attempts(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("x", n_gpus=1, task_id="r", retries=1, retry_backoff=0)
        await settle()
        ex.finish("r", 1)
        await settle()
        ex.finish("r", 1)
        await settle()
        copy = await engine.restart("r")
        assert (copy.attempt, copy.attempts, copy.retries) == (1, [], 1)
        assert len(engine.get("r").attempts) == 2  # the original keeps its history
        await settle()
        ex.finish(copy.task_id, 0)
        await settle()
        assert attempts_of(engine.get(copy.task_id)) == [(1, TaskState.SUCCEEDED, 0)]

    run(tmp_path, body)


def test_a_backoff_outlives_a_restart_of_ant(tmp_path: Path) -> None:
    """The retry time is absolute: a task waiting at shutdown still waits after the restart
    (not held, as queued tasks are), and starts once its time has come."""
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        async with engine_for(tmp_path, ex, clock) as engine:
            await engine.submit("x", n_gpus=1, task_id="w", retries=2, retry_backoff=600)
            await engine.submit("h", n_gpus=3, task_id="hog")
            await engine.submit("y", n_gpus=4, task_id="plain-queued")
            await settle()
            ex.finish("w", 1)
            await settle()
            retry_at = engine.get("w").retry_at
            assert retry_at == clock.now + 600
        clock.now += 60
        async with engine_for(tmp_path, ex, clock) as engine:
            w = engine.get("w")
            assert w.state is TaskState.QUEUED and w.retry_at == retry_at
            assert engine.get("plain-queued").state is TaskState.HELD
            assert engine.task_dict(w)["pending_reason"].startswith("retrying in 9m")
            await settle()
            assert ex.started == ["w", "hog"]
        clock.now += 600
        async with engine_for(tmp_path, ex, clock) as engine:
            await settle()
            w = engine.get("w")
            assert w.state is TaskState.RUNNING and w.attempt == 2
            assert ex.started == ["w", "hog", "w"]
            ex.finish("w", 0)
            await settle()
            assert engine.get("w").state is TaskState.SUCCEEDED

    asyncio.run(main())


def test_a_task_lost_while_ant_was_down_is_retried_only_if_really_gone(tmp_path: Path) -> None:
    """Re-adopted tasks are not lost; a lost one is run again only when no process of it is
    left (never twice at once); one that ended while ANT was down is retried on failure."""
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        on_all = {"retries": 1, "retry_on": ["failure", "lost"], "retry_backoff": 0.0}
        async with engine_for(tmp_path, ex, clock) as engine:
            await engine.submit("a", n_gpus=1, task_id="adopted", **on_all)
            await engine.submit("b", n_gpus=1, task_id="vanished", **on_all)
            await engine.submit("c", n_gpus=1, task_id="failed-meanwhile", **on_all)
            await engine.submit("d", n_gpus=1, task_id="left-some", **on_all)
            await settle()
            engine.running.clear()  # ANT dies
        ex.procs["vanished"].ended = True  # no exit code anywhere, no process left
        ex.finish("failed-meanwhile", 4)
        ex.procs["left-some"].ended = True
        ex.procs["left-some"].strays = [99999]  # a process of it still runs
        async with engine_for(tmp_path, ex, clock) as engine:
            assert engine.recovery_summary["retried"] == 2
            await settle()
            assert engine.get("adopted").state is TaskState.RUNNING
            assert engine.get("adopted").attempt == 1
            for task_id, how in (("vanished", TaskState.LOST), ("failed-meanwhile", None)):
                again = engine.get(task_id)
                assert again.state is TaskState.RUNNING and again.attempt == 2, task_id
                assert again.attempts[0].state is (how or TaskState.FAILED)
            assert engine.get("failed-meanwhile").attempts[0].exit_code == 4
            left = engine.get("left-some")
            assert left.state is TaskState.LOST and len(left.attempts) == 1
            assert ex.started.count("left-some") == 1

    asyncio.run(main())


def test_retry_words_are_checked() -> None:
    assert retries.parse_retry_on("timeout, failure") == ["failure", "timeout"]
    assert retries.parse_retry_on("all") == ["failure", "lost", "timeout"]
    assert retries.parse_backoff("0") == 0 and retries.parse_backoff("2m") == 120
    with pytest.raises(TaskRejected, match="one or more of failure, lost, timeout"):
        retries.parse_retry_on("failure,oom")
    with pytest.raises(TaskRejected, match="from 0 to 100"):
        retries.parse_retries("101")
    with pytest.raises(TaskRejected, match="from 0 s to 1 day"):
        retries.parse_backoff("2d")


def test_the_self_check_counts_tasks_waiting_for_a_retry(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("x", n_gpus=1, task_id="waits", retries=1, retry_backoff=3600)
        await engine.submit("y", n_gpus=4, task_id="queued-behind")
        await settle()
        ex.finish("waits", 1)
        await settle()
        assert engine.get("waits").state is TaskState.QUEUED
        assert engine.get("queued-behind").state is TaskState.RUNNING
        await engine.submit("z", n_gpus=1, task_id="in-the-queue")
        await settle()
        assert engine.doctor()["ok"], engine.doctor()["problems"]
        await engine.delete("waits")  # a waiting task can be deleted like any queued one
        assert "waits" not in engine.queued and not engine._backoffs

    run(tmp_path, body)


def parse(text: str, mode: str = "single", **defaults: Any) -> list[TaskSpec]:
    return parse_submission(
        text,
        mode=mode,  # type: ignore[arg-type]
        defaults=SubmitDefaults(**defaults),
        rng=random.Random(1),
        now=datetime(2026, 1, 1),
    )


def test_inline_words_variables_and_fields_and_the_copy_command() -> None:
    """Inline word > ant_* variable > field > default; per line in multi mode; the copy command
    writes them back so a copy retries the same way."""
    [plain] = parse("python x.py")
    assert (plain.retries, plain.retry_on, plain.retry_backoff) == (0, ["failure"], 30.0)
    [inline] = parse(
        "ant_retries=2 ant_retry_on=lost,failure ant_retry_backoff=1m python x.py",
        retries=5,
        retry_on=["timeout"],
    )
    assert inline.command == "python x.py" and "ant_retr" not in inline.env
    assert (inline.retries, inline.retry_on, inline.retry_backoff) == (2, ["failure", "lost"], 60)
    [by_var] = parse("python x.py", env={"ant_retries": "4"}, retries=1, retry_backoff=0.0)
    assert (by_var.retries, by_var.retry_backoff) == (4, 0.0) and "ant_retries" not in by_var.env
    first, second = parse("ant_retries=1 a\nb", mode="multi", retries=3)
    assert (first.retries, second.retries) == (1, 3)
    with pytest.raises(TaskRejected, match="ant_retry_backoff"):
        parse("ant_retries=1 ant_retry_backoff=soon a")
    task = Task.from_spec(inline, created_at=0.0, queue_seq=1)
    copy = format_copy_command(
        task.n_gpus, task.env, task.submitted, retries=retries.retry_words(task)
    )
    assert "ant_retries=2 ant_retry_on=failure,lost ant_retry_backoff=1m" in copy
    [again] = parse(copy)
    assert (again.retries, again.retry_on, again.retry_backoff) == (2, ["failure", "lost"], 60)


def test_a_restored_lost_task_goes_on_with_its_next_attempt(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("x", n_gpus=1, task_id="gone")  # no retries
        await settle()
        ex.lose("gone", "its node died")
        await settle()
        assert engine.get("gone").state is TaskState.LOST
        [restored] = await engine.restore(["gone"])
        assert restored.attempt == 2 and attempts_of(restored) == [(1, TaskState.LOST, None)]
        await settle()
        assert ex.procs["gone"].request.attempt == 2  # a log of its own
        ex.finish("gone", 0)
        await settle()
        done = engine.get("gone")
        assert done.state is TaskState.SUCCEEDED
        assert attempts_of(done) == [(1, TaskState.LOST, None), (2, TaskState.SUCCEEDED, 0)]

    run(tmp_path, body)


def test_each_attempt_has_a_log_file_of_its_own(tmp_path: Path) -> None:
    from ant_scheduler.executors.logfiles import exit_path_for, log_path_for

    first = log_path_for(tmp_path, "s1", "train.v2")
    second = log_path_for(tmp_path, "s1", "train.v2", attempt=2)
    assert (first.name, second.name) == ("train.v2.log", "train.v2.attempt2.log")
    assert exit_path_for(second).name == "train.v2.attempt2.exit"
