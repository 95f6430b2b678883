"""Dependencies (`after`) in the engine, in-process: the state rules (met, never met, the
cascade), restarts with and without dependents, a restart of ANT, and the cost of waiting tasks
(kept aside: a pass never looks at them)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ant_scheduler.core.errors import TaskRejected
from ant_scheduler.core.task import Dependency, TaskState
from ant_scheduler.engine import Engine
from ant_scheduler.executors.fake import FakeExecutor
from tests.unit.test_engine import Clock, engine_for, run
from tests.unit.test_engine_integrity import settle

Q, R = TaskState.QUEUED, TaskState.RUNNING


def after(*items: str) -> list[Dependency]:
    deps = []
    for item in items:
        task_id, _, condition = item.partition(":")
        deps.append(Dependency(task_id, condition or "ok"))  # type: ignore[arg-type]
    return deps


def states(engine: Engine, *ids: str) -> list[TaskState]:
    return [engine.get(i).state for i in ids]


def test_a_task_waits_for_its_parent_and_starts_when_it_succeeds(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("prep", n_gpus=1, task_id="prep")
        await engine.submit("train", n_gpus=1, task_id="train", after=after("prep"))
        await settle()
        assert states(engine, "prep", "train") == [R, Q]
        position, reason = engine.queue_info(engine.get("train"))
        assert position is None and reason == "waiting for prep (running)"
        assert "train" not in engine.queue and "train" in engine.waits
        ex.finish("prep", 0)
        await settle()
        assert states(engine, "prep", "train") == [TaskState.SUCCEEDED, R]
        assert engine.get("train").after == after("prep")

    run(tmp_path, body)


def test_the_reason_names_the_first_unmet_dependency(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("a", n_gpus=4, task_id="a")
        await engine.submit("b", n_gpus=4, task_id="b")
        await engine.submit("c", task_id="c", after=after("a", "b:any"))
        await settle()
        assert engine.queue_info(engine.get("c"))[1] == "waiting for a (running)"
        ex.finish("a", 0)
        await settle()
        assert engine.queue_info(engine.get("c"))[1] == "waiting for b (running, to end)"
        ex.finish("b", 3)  # any: a failure will do
        await settle()
        assert engine.get("c").state is R

    run(tmp_path, body)


def test_conditions_met_and_never_met(tmp_path: Path) -> None:
    """ok needs a success, fail a non-success, any an end; the impossible ones end
    dependency_failed with a reason that says why."""

    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("good", task_id="good")
        await engine.submit("bad", task_id="bad")
        for parent in ("good", "bad"):
            for condition in ("ok", "any", "fail"):
                await engine.submit(
                    "child",
                    n_gpus=0,
                    task_id=f"{parent}-{condition}",
                    after=after(f"{parent}:{condition}"),
                )
        await settle()
        ex.finish("good", 0)
        ex.finish("bad", 1)
        await settle()
        got = {t: engine.get(t).state for t in engine.queued | engine.running}
        expected_running = {"good-ok", "good-any", "bad-any", "bad-fail"}
        assert {t for t, s in got.items() if s is R} == expected_running
        failed = {t: engine.get(t) for t in ("good-fail", "bad-ok")}
        assert all(t.state is TaskState.DEPENDENCY_FAILED for t in failed.values())
        assert failed["bad-ok"].reason == "bad ended failed; this task needed it to succeed"
        assert failed["good-fail"].reason == "good ended succeeded; this task needed it to fail"
        assert failed["bad-ok"].finished_at == clock.now and failed["bad-ok"].started_at is None

    run(tmp_path, body)


def test_a_dependency_failure_cascades_down_the_chain(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        text = (
            "ant_task_id=a a\nant_task_id=b ant_after=[prev] b\nant_task_id=c ant_after=[prev] c\n"
        )
        text += "ant_task_id=d ant_after=b:fail d\nant_task_id=e ant_after=c:any e\n"
        await engine.submit(text, mode="multi")
        await settle()
        assert states(engine, "a", "b", "c", "d", "e") == [R, Q, Q, Q, Q]
        await engine.kill("a")
        await settle()
        # b needed a to succeed; c needed b; d wanted b to fail (it did not run: that counts);
        # e takes any end of c, dependency_failed included.
        assert states(engine, "b", "c") == [TaskState.DEPENDENCY_FAILED] * 2
        assert states(engine, "d", "e") == [R, R]
        assert engine.get("c").reason == "b ended dependency_failed; this task needed it to succeed"

    run(tmp_path, body)


def test_an_ended_parent_decides_at_once(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("x", task_id="done")
        await settle()
        ex.finish("done", 0)
        await settle()
        await engine.submit("y", task_id="runs", after=after("done"))
        await engine.submit("z", task_id="never", after=after("done:fail"))
        await settle()
        assert states(engine, "runs", "never") == [R, TaskState.DEPENDENCY_FAILED]

    run(tmp_path, body)


def test_unknown_ids_and_cycles_are_refused_and_change_nothing(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        with pytest.raises(TaskRejected, match=r"'ghost' \(after\), but there is no such"):
            await engine.submit("x", task_id="x", after=after("ghost"))
        with pytest.raises(TaskRejected, match="cannot wait for itself"):
            await engine.submit("x", task_id="x", after=after("x"))
        cycle = "ant_task_id=a ant_after=b a\nant_task_id=b ant_after=a b\n"
        with pytest.raises(TaskRejected, match="cycle: "):
            await engine.submit(cycle, mode="multi")
        with pytest.raises(TaskRejected, match="line before, and there is none"):
            await engine.submit("ant_after=[prev] x", task_id="x")
        with pytest.raises(TaskRejected, match="must be ok, any or fail"):
            await engine.submit("ant_after=a:maybe x", task_id="x")
        assert engine.store.count_by_state()[Q] == 0 and not engine.queued
        # A later line may be named: no cycle, the first waits for the second.
        await engine.submit("ant_task_id=a ant_after=b a\nant_task_id=b b\n", mode="multi")
        await settle()
        assert states(engine, "a", "b") == [Q, R]

    run(tmp_path, body)


def test_killing_or_deleting_a_waiting_parent(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("big", n_gpus=4, task_id="big")
        await engine.submit("p1", n_gpus=4, task_id="p1")
        await engine.submit("p2", n_gpus=4, task_id="p2")
        await engine.submit("c1", task_id="c1", after=after("p1:any"))
        await engine.submit("c2", task_id="c2", after=after("p2:any"))
        await settle()
        await engine.kill("p1")  # cancelled before it ran: an end, so `any` is met
        await engine.delete("p2")  # deleted: its end will never come
        await settle()
        assert engine.get("c1").state is R
        c2 = engine.get("c2")
        assert c2.state is TaskState.DEPENDENCY_FAILED
        assert c2.reason == "p2 was deleted before it ended"
        # Killing a waiting task forgets its wait.
        await engine.submit("c3", task_id="c3", after=after("big"))
        await engine.kill("c3")
        assert "c3" not in engine.waits and engine.get("c3").state is TaskState.KILLED

    run(tmp_path, body)


def test_restart_without_and_with_dependents(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        chain = "ant_task_id=prep p\nant_task_id=train ant_after=[prev] t\n"
        chain += "ant_task_id=eval ant_after=[prev] e\nant_task_id=other o\n"
        await engine.submit(chain, mode="multi")
        await settle()
        ex.finish("prep", 1)
        ex.finish("other", 0)
        await settle()
        assert states(engine, "train", "eval") == [TaskState.DEPENDENCY_FAILED] * 2
        # A plain restart re-runs prep alone.
        await engine.restart("prep")
        await settle()
        assert states(engine, "train", "eval") == [TaskState.DEPENDENCY_FAILED] * 2
        assert engine.get("train").restarted_as is None
        ex.finish("prep-restart-1", 1)
        await settle()
        # --with-dependents: train and eval are restarted, waiting for the new runs.
        copy = await engine.restart("prep-restart-1", with_dependents=True)
        await settle()
        assert copy.task_id == "prep-restart-2"
        train, evaluate = engine.get("train-restart-1"), engine.get("eval-restart-1")
        assert train.after == after("prep-restart-2") and evaluate.after == after("train-restart-1")
        assert states(engine, "prep-restart-2", "train-restart-1", "eval-restart-1") == [R, Q, Q]
        assert engine.get("train").restarted_as == "train-restart-1"
        assert not any(t.startswith("other-") for t in engine.queued)
        ex.finish("prep-restart-2", 0)
        await settle()
        ex.finish("train-restart-1", 0)
        await settle()
        assert engine.get("eval-restart-1").state is R

    run(tmp_path, body)


def test_restarting_a_running_parent_with_dependents_keeps_them_waiting(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("p", task_id="p")
        await engine.submit("c", task_id="c", after=after("p"))
        await engine.submit("d", task_id="d", after=after("c"))
        await settle()
        await engine.restart("p", with_dependents=True)  # kills p: c now waits for the copy
        await settle()
        assert engine.get("p").state is TaskState.KILLED
        assert engine.get("c").after == after("p-restart-1")
        assert states(engine, "c", "d") == [Q, Q]
        assert engine.queue_info(engine.get("c"))[1] == "waiting for p-restart-1 (running)"
        ex.finish("p-restart-1", 0)
        await settle()
        assert engine.get("c").state is R

    run(tmp_path, body)


def test_restart_of_a_child_waits_for_the_newest_run_of_its_parent(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("p", task_id="p")
        await engine.submit("c", task_id="c", after=after("p"))
        await settle()
        ex.finish("p", 1)
        await settle()
        await engine.restart("p")
        await settle()
        copy = await engine.restart("c")  # c was dependency_failed: restartable
        assert copy.after == after("p-restart-1")
        await settle()
        assert (
            engine.queue_info(engine.get("c-restart-1"))[1] == "waiting for p-restart-1 (running)"
        )

    run(tmp_path, body)


def test_dependencies_survive_a_restart_of_ant(tmp_path: Path) -> None:
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        async with engine_for(tmp_path, ex, clock, RECOVERY_auto_restore=True) as engine:
            await engine.submit("a", task_id="keeps")
            await engine.submit("b", task_id="ends")
            await engine.submit("c", task_id="waits-keeps", after=after("keeps"))
            await engine.submit("d", task_id="waits-ends", after=after("ends"))
            await engine.submit("e", task_id="fails", after=after("ends:fail"))
            await settle()
            engine.running.clear()  # ANT dies: nothing more is recorded
        ex.finish("ends", 0)  # while ANT is down
        async with engine_for(tmp_path, ex, clock, RECOVERY_auto_restore=True) as engine:
            await settle()
            assert engine.get("ends").state is TaskState.SUCCEEDED
            assert engine.get("waits-ends").state is R
            assert engine.get("fails").state is TaskState.DEPENDENCY_FAILED
            assert engine.get("waits-keeps").state is Q
            assert engine.queue_info(engine.get("waits-keeps"))[1] == "waiting for keeps (running)"
            ex.finish("keeps", 0)
            await settle()
            assert engine.get("waits-keeps").state is R
            assert engine.doctor()["ok"], engine.doctor()["problems"]

    asyncio.run(main())


def test_held_tasks_keep_their_dependencies_when_restored(tmp_path: Path) -> None:
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        async with engine_for(tmp_path, ex, clock) as engine:
            await engine.submit("a", n_gpus=4, task_id="big")
            await engine.submit("b", task_id="child", after=after("big"))
            await settle()
            engine.running.clear()
        async with engine_for(tmp_path, ex, clock) as engine:
            assert engine.get("child").state is TaskState.HELD
            await engine.restore(["child"])
            await settle()
            assert engine.queue_info(engine.get("child"))[1] == "waiting for big (running)"
            ex.finish("big", 0)
            await settle()
            assert engine.get("child").state is R

    asyncio.run(main())


def test_waiting_tasks_cost_a_pass_nothing(tmp_path: Path) -> None:
    """10,000 tasks wait for one parent: passes examine none of them, and the parent's end
    releases them all at once."""

    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("p", n_gpus=4, task_id="p")
        text = "\n".join(f"ant_task_id=w{i} ant_after=p ant_n_gpus=1 w" for i in range(10_000))
        await engine.submit(text, mode="multi")
        await settle()
        assert len(engine.waits) == 10_000 and len(engine.queue) == 0
        engine._request_schedule()
        await settle()
        assert engine._plan is not None and engine._plan.examined == 0
        ex.finish("p", 0)
        await settle()
        assert len(engine.waits) == 0 and len(engine.queue) == 10_000 - 4
        assert engine._plan.examined < 50

    run(tmp_path, body)


def test_a_rename_of_a_parent_is_followed_by_its_dependents(tmp_path: Path) -> None:
    """`ant rename`: every `after` naming the old id names the new one, in memory (so no later
    write puts it back) and in the store, the wait follows, and the renamed parent's end
    releases the child."""

    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("p", n_gpus=4, task_id="blocker")
        await engine.submit("q", n_gpus=4, task_id="old")
        await engine.submit("c", task_id="child", after=after("old:any"))
        await settle()
        await engine.rename("old", "new")
        stored = engine.store.get_task("child")
        assert stored is not None and stored.after == after("new:any")
        assert engine.get("child").after == after("new:any")
        assert engine.waits.children("new") == {"child"}
        reason = engine.queue_info(engine.get("child"))[1]
        assert reason == "waiting for new (queued, to end)"
        changed = [
            e.data
            for e in engine.events.events_after(0)
            if e.type == "task_changed" and e.data.get("task_id") == "child"
        ]
        assert changed and changed[-1]["after"] == [{"task_id": "new", "condition": "any"}]
        ex.finish("blocker", 0)
        await settle()
        ex.finish("new", 3)
        await settle()
        assert engine.get("child").state is TaskState.RUNNING  # `any`: it ended, however

    run(tmp_path, body)


def test_restart_with_dependents_repoints_a_released_child_not_started_yet(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("p", task_id="p")
        await engine.submit("big", n_gpus=4, task_id="big")
        await engine.submit("c", n_gpus=1, task_id="c", after=after("p"))
        await settle()
        ex.finish("p", 0)
        await settle()
        assert "c" in engine.queue  # released, but the GPUs are taken
        await engine.restart("p", with_dependents=True)
        await settle()
        assert engine.get("c").after == after("p-restart-1") and "c" in engine.waits

    run(tmp_path, body)
