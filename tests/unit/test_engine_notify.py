"""Notifications from the engine, in-process (fake executor, fixed clock) to a real HTTP receiver
on 127.0.0.1: which ends are told to which URL, and that a hung receiver holds up nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ant_scheduler.core.task import TaskState
from ant_scheduler.executors.fake import FakeExecutor
from tests.unit.test_engine import Clock, engine_for
from tests.unit.test_engine_integrity import settle
from tests.webhook_receiver import webhook_receiver


async def until(predicate: Callable[[], Any], seconds: float = 20) -> Any:
    """Let the loop run until predicate() holds (the POSTs go through real sockets)."""
    for _ in range(int(seconds / 0.01)):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_every_end_is_told_to_the_server_url_and_the_task_url(tmp_path: Path) -> None:
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        with webhook_receiver() as hook:
            server_url = hook.url + "/server"
            async with engine_for(tmp_path, ex, clock, NOTIFY_webhook_url=server_url) as engine:
                await engine.submit("python ok.py", n_gpus=1, task_id="ok")
                await engine.submit(
                    "python bad.py", n_gpus=1, task_id="bad", notify=hook.url + "/mine/secret"
                )
                await engine.submit("sleep 1000", n_gpus=1, task_id="killme")
                await engine.submit("big", n_gpus=4, task_id="waits")  # stays queued
                await settle()
                assert engine.task_dict(engine.get("bad"))["notify"] == hook.url + "/…"
                assert engine.get("bad").notify == hook.url + "/mine/secret"
                await engine.kill("waits")  # cancelled before it started: an end too
                ex.write("bad", "epoch 1\repoch 2\nTraceback (most recent call last)\n")
                clock.now += 90
                ex.finish("ok", 0)
                ex.finish("bad", 1)
                await engine.kill("killme")
                await settle()
                told = await until(lambda: len(hook.bodies("/server")) == 4 and hook.by_task())
                mine = await until(lambda: hook.bodies("/mine/secret"))
                await until(lambda: engine.notifier.sent == 5)  # counted once answered
                assert engine.health()["notifications"] == {
                    "sent": 5,
                    "failed": 0,
                    "dropped": 0,
                    "pending": 0,
                    "last_error": None,
                }
        server = hook.by_task("/server")
        assert {k: v["state"] for k, v in server.items()} == {
            "ok": "succeeded",
            "bad": "failed",
            "killme": "killed",
            "waits": "killed",
        }
        assert [b["task_id"] for b in mine] == ["bad"] and mine[0] == server["bad"]
        bad = server["bad"]
        assert bad["exit_code"] == 1 and bad["duration_seconds"] == 90
        assert bad["command"] == "python bad.py" and bad["gpu_ids"] == [1]
        assert bad["log_tail"] == ["epoch 2", "Traceback (most recent call last)"]
        assert bad["event"] == "task_ended" and bad["server"]
        assert server["waits"]["reason"] == "cancelled before it started"
        assert server["waits"]["duration_seconds"] is None
        assert told  # every POST is JSON, with its content type
        assert all(r.headers["Content-Type"] == "application/json" for r in hook.received)

    asyncio.run(main())


def test_failures_only_for_the_server_url_and_slack_format(tmp_path: Path) -> None:
    """NOTIFY_on "failures" spares the server's URL the successes; a task's own URL still hears
    every end. NOTIFY_format "slack" sends {"text": ...} to both."""
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        with webhook_receiver() as hook:
            async with engine_for(
                tmp_path,
                ex,
                clock,
                NOTIFY_webhook_url=hook.url + "/team",
                NOTIFY_on="failures",
                NOTIFY_format="slack",
            ) as engine:
                await engine.submit("true", n_gpus=1, task_id="fine", notify=hook.url + "/me")
                await engine.submit("false", n_gpus=1, task_id="broke")
                await settle()
                ex.write("broke", "oops\n")
                ex.finish("fine", 0)
                ex.finish("broke", 2)
                await settle()
                await until(lambda: engine.notifier.sent == 2)
                await asyncio.sleep(0.2)  # nothing more comes
                assert engine.notifier.sent == 2 and len(hook.received) == 2
        [team] = hook.bodies("/team")
        [me] = hook.bodies("/me")
        assert team["text"].startswith("ANT on ") and "task broke failed (exit 2)" in team["text"]
        assert team["text"].endswith("```\noops\n```")
        assert "task fine succeeded (exit 0)" in me["text"] and list(me) == ["text"]

    asyncio.run(main())


def test_a_hung_receiver_holds_up_nothing_and_is_retried_then_given_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ex, clock = FakeExecutor(), Clock()
    settings = {
        "NOTIFY_timeout_seconds": 1.0,
        "NOTIFY_retries": 1,
        "NOTIFY_backoff_seconds": 0.05,
    }

    async def main() -> None:
        with webhook_receiver(hang=True) as hook:
            url = hook.url + "/hook/secret-token"
            async with engine_for(tmp_path, ex, clock, NOTIFY_webhook_url=url, **settings) as e:
                for name in ("first", "second", "third"):
                    await e.submit(f"run {name}", n_gpus=4, task_id=name)  # one at a time
                await settle()
                ex.finish("first", 1)
                await settle()
                assert e.get("second").state is TaskState.RUNNING
                ex.finish("second", 0)
                await settle()
                # Both ends are recorded and the next task runs while the receiver has not
                # answered a single POST yet.
                assert e.get("third").state is TaskState.RUNNING
                assert e.notifier.sent == e.notifier.failed == 0
                await until(lambda: e.notifier.failed == 2)
                status = e.health()["notifications"]
                assert status["sent"] == 0 and status["pending"] == 0
                assert status["last_error"] in {
                    f"notification of task '{name}' to {hook.url}/…: timed out"
                    for name in ("first", "second")
                }
                assert len(hook.received) == 4  # two attempts each
                ex.finish("third", 0)
                await settle()
        lines = [line for line in capsys.readouterr().err.splitlines() if "notification" in line]
        assert f"ant: notification of task 'first' to {hook.url}/… failed (attempt 1 of 2): " in (
            "\n".join(lines)
        )
        assert any(line.endswith("timed out; again in 0.05 s") for line in lines)
        assert any(line.endswith("(attempt 2 of 2): timed out; given up") for line in lines)
        assert all("secret-token" not in line and "Traceback" not in line for line in lines)

    asyncio.run(main())


def test_only_ended_tasks_are_told(tmp_path: Path) -> None:
    """A task that goes back to the queue (a retry between attempts) is not an end."""
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        async with engine_for(
            tmp_path, ex, clock, NOTIFY_webhook_url="http://127.0.0.1:9/x"
        ) as engine:
            await engine.submit("run", n_gpus=4, task_id="a")
            await engine.submit("run", n_gpus=4, task_id="queued")
            await settle()
            engine.notifier.task_ended(engine.get("a"))  # running
            engine.notifier.task_ended(engine.get("queued"))
            assert engine.notifier.status()["pending"] == 0
            done = engine.get("a").copy()
            done.move_to(TaskState.FAILED)
            engine.notifier.task_ended(done)
            assert engine.notifier.status()["pending"] == 1

    asyncio.run(main())


def test_no_url_no_work(tmp_path: Path) -> None:
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        async with engine_for(tmp_path, ex, clock) as engine:
            await engine.submit("run", n_gpus=1, task_id="a")
            await settle()
            ex.finish("a", 1)
            await settle()
            assert engine.get("a").state is TaskState.FAILED
            assert engine.notifier.status()["pending"] == 0

    asyncio.run(main())


def test_ends_found_when_ant_restarts_are_told(tmp_path: Path) -> None:
    """A task that ended while ANT was down, and one lost then, are told once ANT is back."""
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        with webhook_receiver() as hook:
            async with engine_for(tmp_path, ex, clock) as engine:
                await engine.submit("run", n_gpus=1, task_id="done-meanwhile", notify=hook.url)
                await engine.submit("run", n_gpus=1, task_id="vanished", notify=hook.url)
                await settle()
                engine.running.clear()  # ANT dies with both running
            ex.procs["done-meanwhile"].ended = True
            ex.procs["done-meanwhile"].exit_code = 0
            del ex.procs["vanished"]
            async with engine_for(tmp_path, ex, clock) as engine:
                assert engine.recovery_summary["finished_while_down"] == 1
                assert engine.recovery_summary["lost"] == 1
                told = await until(lambda: len(hook.received) == 2 and hook.by_task())
        assert {k: v["state"] for k, v in told.items()} == {
            "done-meanwhile": "succeeded",
            "vanished": "lost",
        }
        assert told["vanished"]["reason"] == "no process of it was found"

    asyncio.run(main())


def test_a_full_queue_drops_and_says_so_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ex, clock = FakeExecutor(), Clock()

    async def main() -> None:
        with webhook_receiver() as hook:
            async with engine_for(
                tmp_path, ex, clock, NOTIFY_webhook_url=hook.url, NOTIFY_queue_size=1
            ) as engine:
                await engine.submit("run", n_gpus=1, task_id="a")
                await settle()
                done = engine.get("a").copy()
                done.move_to(TaskState.FAILED)
                for _ in range(6):  # six ends at once, before a worker takes any
                    engine.notifier.task_ended(done)
                await until(lambda: engine.notifier.sent == 1)
                status = engine.health()["notifications"]
                assert status["dropped"] == 5 and status["pending"] == 0
                assert "dropped" in status["last_error"]
                assert len(hook.received) == 1
                ex.finish("a", 0)
                await settle()
        drops = [line for line in capsys.readouterr().err.splitlines() if "dropped" in line]
        assert len(drops) == 1 and "NOTIFY_queue_size" in drops[0]

    asyncio.run(main())
