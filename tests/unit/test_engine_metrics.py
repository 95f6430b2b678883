"""The dashboard's metrics from the engine with the fake executor: queue wait, ended tasks."""

from __future__ import annotations

from pathlib import Path

from ant_scheduler.engine import Engine
from ant_scheduler.executors.fake import FakeExecutor
from tests.unit.test_engine import Clock, run
from tests.unit.test_engine_integrity import settle


def value(engine: Engine, name: str, **labels: str) -> float:
    found = engine.metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_wait_time_is_queued_to_started_and_ends_are_counted_once(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.submit("a", n_gpus=4, task_id="first")
        await engine.submit("b", n_gpus=4, task_id="second")  # waits for the first one's GPUs
        await engine.submit("c", n_gpus=4, task_id="cancelled")
        await settle()
        assert value(engine, "ant_task_wait_seconds_count") == 1
        assert value(engine, "ant_task_wait_seconds_bucket", le="1.0") == 1  # started at once
        clock.now += 120
        await engine.kill("cancelled")  # never started: an end, no wait
        ex.finish("first", 0)
        await settle()
        assert engine.get("second").started_at == clock.now
        assert value(engine, "ant_task_wait_seconds_count") == 2
        assert value(engine, "ant_task_wait_seconds_sum") == 120
        assert value(engine, "ant_task_wait_seconds_bucket", le="60.0") == 1
        assert value(engine, "ant_task_wait_seconds_bucket", le="300.0") == 2
        ex.finish("second", 3)
        await settle()
        # A retried attempt is no end; its wait runs from the previous attempt's end.
        await engine.submit("d", n_gpus=1, task_id="flaky", retries=1, retry_backoff=0)
        await settle()
        clock.now += 7
        ex.finish("flaky", 1)
        await settle()
        clock.now += 5
        ex.finish("flaky", 1)
        await settle()
        assert value(engine, "ant_tasks_ended_total", state="succeeded") == 1
        assert value(engine, "ant_tasks_ended_total", state="failed") == 2  # second, flaky once
        assert value(engine, "ant_tasks_ended_total", state="killed") == 1
        assert value(engine, "ant_tasks_ended_total", state="lost") == 0  # there before any end
        assert (
            engine.metrics.registry.get_sample_value(
                "ant_tasks_ended_total", {"state": "timed_out"}
            )
            == 0
        )
        assert value(engine, "ant_task_wait_seconds_count") == 4

    run(tmp_path, body)
