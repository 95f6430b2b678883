"""Importing an ANT 1.1 recovery file in the engine (fake executor, real SQLite): what each entry
becomes, held ones restored and run, clashes never overwritten, twice changes nothing, and the
imported tasks as they are after a restart of ANT."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ant_scheduler.core.errors import InvalidQuery
from ant_scheduler.core.task import TaskState
from ant_scheduler.engine import Engine
from ant_scheduler.executors.fake import FakeExecutor
from tests.unit.test_engine import Clock, engine_for, run
from tests.unit.test_engine_integrity import settle


def entry(task_id: str, **fields: object) -> dict[str, object]:
    return {"task_id": task_id, "command": f"run {task_id}", "n_gpus": 1, **fields}


FILE = json.dumps(
    {
        "version": 2,
        "sessions": [
            {
                "session_id": "1700000000000-aaaaaaaa",
                "saved_at": 1_600_000_500.0,
                "completed": [
                    entry("ok", _start_time=1_600_000_000.0, _stop_time=1_600_000_100.0),
                    entry("killed", terminated=True, _start_time=1_600_000_000.0),
                    entry("failed", returncode=2, _start_time=1.6e9, _stop_time=1.6e9 + 5),
                ],
                "ongoing": [entry("cut", _start_time=1_600_000_200.0, gpu_ids=[0])],
                "queued": [entry("waiting"), entry("mine")],
            }
        ],
        "hidden": [entry("gone", _hidden_from_section="queued")],
    }
)


def test_entries_become_history_and_held_tasks(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("something else", task_id="mine")
        out = await engine.import_ant1(FILE, [])
        assert out["imported"] == 6 and out["held"] == 2 and out["clashes"] == ["mine"]
        assert engine.get("mine").command == "something else"
        states = {i: engine.get(i).state for i in out["task_ids"]}
        assert states == {
            "cut": TaskState.HELD,
            "waiting": TaskState.HELD,
            "ok": TaskState.SUCCEEDED,
            "killed": TaskState.KILLED,
            "failed": TaskState.FAILED,
            "gone": TaskState.KILLED,
        }
        ok = engine.get("ok")
        assert (ok.started_at, ok.finished_at, ok.exit_code) == (1.6e9, 1_600_000_100.0, None)
        assert engine.get("failed").exit_code == 2
        assert engine.get("killed").finished_at == 1_600_000_000.0  # no stop time: its start
        assert engine.get("gone").started_at is None and engine.get("gone").gpu_ids == []
        cut = engine.get("cut")
        assert cut.gpu_ids == [] and [a.state for a in cut.attempts] == [TaskState.LOST]
        recovery = engine.recovery()
        held = {t.task_id for t in recovery["last_session"] + recovery["earlier_sessions"]}
        assert held == {"cut", "waiting"}
        assert ex.started == ["mine"]  # nothing imported runs by itself

        # Restored, they run like any task (the interrupted one as its next attempt).
        restored = await engine.restore(["cut", "waiting"])
        assert {t.task_id: t.attempt for t in restored} == {"cut": 2, "waiting": 1}
        await settle()
        assert sorted(ex.started) == ["cut", "mine", "waiting"]

        again = await engine.import_ant1(FILE, [])
        assert again["imported"] == 0 and again["already_there"] == 6
        assert again["clashes"] == ["mine"]

    run(tmp_path, body)


def test_a_corrupt_file_changes_nothing(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        with pytest.raises(InvalidQuery):
            await engine.import_ant1('{"sessions": [', [])
        assert engine.list_tasks()[1] == 0

    run(tmp_path, body)


def test_imported_tasks_stay_as_they_are_across_a_restart(tmp_path: Path) -> None:
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        async with engine_for(tmp_path, ex, clock) as engine:
            await engine.import_ant1(FILE, [])
        async with engine_for(tmp_path, ex, clock) as engine:
            assert engine.get("cut").state is TaskState.HELD
            assert engine.get("ok").state is TaskState.SUCCEEDED
            assert engine.recovery_summary["held"] == 0  # ANT's own recovery left them alone
            await settle()
            assert engine.doctor()["ok"], engine.doctor()["problems"]
            assert not ex.started

    asyncio.run(main())


def test_two_imports_at_once_import_each_task_once_and_keep_its_log(tmp_path: Path) -> None:
    old = tmp_path / "ant1"
    old.mkdir()
    for name in ("ok", "cut"):
        (old / f"{name}.log").write_text(f"output of {name}\n")
    data = json.loads(FILE)
    for section in data["sessions"][0].values():
        for item in section if isinstance(section, list) else ():
            item["log_file_name"] = f"{item['task_id']}.log"

    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        both = await asyncio.gather(
            engine.import_ant1(json.dumps(data), [str(old)]),
            engine.import_ant1(json.dumps(data), [str(old)]),
        )
        assert sorted(o["imported"] for o in both) == [0, 7]
        assert sum(o["logs_copied"] for o in both) == 2
        ok = engine.get("ok")
        assert ok.log_path is not None and Path(ok.log_path).read_text() == "output of ok\n"
        assert Path(ok.log_path).parent.parent == engine.log_dir / "ant1-import"
        [interrupted] = engine.get("cut").attempts
        assert interrupted.log_path is not None and Path(interrupted.log_path).exists()
        # The import that imported nothing left no directory behind.
        assert len(list((engine.log_dir / "ant1-import").iterdir())) == 1

    run(tmp_path, body)
