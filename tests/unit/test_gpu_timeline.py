"""The dashboard's GPU timeline and summary from the engine, in-process over two fake nodes: bars
by GPU label, running tasks up to now, windows, and the counts of the strip."""

from __future__ import annotations

from pathlib import Path

import pytest

from ant_scheduler.core.errors import InvalidQuery
from ant_scheduler.core.task import TaskState
from ant_scheduler.engine import Engine
from ant_scheduler.executors.fake import FakeExecutor
from ant_scheduler.monitor.fake import FakeGpuBackend
from tests.unit.test_engine_integrity import settle
from tests.unit.test_engine_nodes import run, submit


def test_bars_per_gpu_label_with_running_tasks_and_the_summary(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, gpus: FakeGpuBackend) -> None:
        await submit(engine, "python train.py", n_gpus=2, task_id="a")
        await submit(engine, "python eval.py", n_gpus=1, task_id="b")
        await submit(engine, "true", n_gpus=0, task_id="cpu")
        ex.finish("a", 1)
        ex.finish("cpu")
        await settle()
        await submit(engine, "sleep 1", n_gpus=4, task_id="wide")  # fits on no node: queued
        assert engine.get("a").state is TaskState.FAILED

        line = engine.gpu_timeline(3600)
        assert line["now"] - line["since"] == 3600 and not line["truncated"]
        rows = {g["label"]: g for g in line["gpus"]}
        assert list(rows) == ["node-a:0", "node-a:1", "node-b:0", "node-b:1"]
        assert rows["node-a:0"]["node"] == "node-a"
        [bar] = rows["node-a:0"]["bars"]
        assert (bar["task_id"], bar["state"], bar["exit_code"]) == ("a", "failed", 1)
        assert bar["command"] == "python train.py" and bar["end"] >= bar["start"]
        assert [b["task_id"] for b in rows["node-a:1"]["bars"]] == ["a"]
        [running] = rows["node-b:0"]["bars"]
        assert (running["task_id"], running["state"], running["end"]) == ("b", "running", None)
        assert rows["node-b:1"]["bars"] == []  # idle the whole window

        assert engine.summary() == {
            "running": 1,
            "queued": 1,
            "held": 0,
            "lost": 0,
            "failed_24h": 1,
            "gpus_busy": 1,
            "gpus_total": 4,
        }
        for bad in (59, 32 * 86400):
            with pytest.raises(InvalidQuery, match="window"):
                engine.gpu_timeline(bad)
        with pytest.raises(InvalidQuery, match="MONITORING_keep_hours"):
            engine.system_history(25 * 3600)

    run(tmp_path, body)
