"""The Executor contract (executors/base.py), checked the same way against every executor.

A driver per executor says how to make a task print, end with a code, or leave a process behind:
the local executor runs real shell commands; the fake one is told. The cluster executor (P9)
gets a driver here too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import pytest

from ant_scheduler.core.errors import InvalidQuery
from ant_scheduler.executors.base import (
    Ended,
    Executor,
    ExitInfo,
    LaunchRequest,
    Lost,
    RankPlacement,
    Running,
)
from ant_scheduler.executors.fake import FakeExecutor
from ant_scheduler.executors.local import LocalExecutor
from tests.reliability.reality import processes_of


class Driver(Protocol):
    # Where tasks go: this machine (""), or a node of a cluster.
    node: str
    # Whether processes a task leaves behind outlive its end (a cluster's agent ends them).
    keeps_left_behind: bool

    def make(self, tmp: Path) -> Executor: ...

    async def ready(self, ex: Executor) -> None:
        """Until the executor can start tasks (a cluster's connects first)."""

    def command(self, prints: str, exit_code: int, leave: bool = False) -> str: ...

    async def run(
        self, ex: Executor, task_id: str, prints: str, exit_code: int, leave: bool
    ) -> None:
        """Let the started task do what `command` says."""

    def cleanup(self) -> None: ...


class LocalDriver:
    node = ""
    keeps_left_behind = True

    async def ready(self, ex: Executor) -> None:
        pass

    def __init__(self) -> None:
        self.server_id = f"contract-{uuid.uuid4().hex[:8]}"

    def make(self, tmp: Path) -> Executor:
        return LocalExecutor(log_dir=tmp / "logs", server_id=self.server_id)

    def command(self, prints: str, exit_code: int, leave: bool = False) -> str:
        behind = "setsid sleep 300 & " if leave else ""
        return f"{behind}echo {prints}; exit {exit_code}"

    async def run(
        self, ex: Executor, task_id: str, prints: str, exit_code: int, leave: bool
    ) -> None:
        pass  # the process does it

    def cleanup(self) -> None:
        import os
        import signal

        for pid in processes_of(self.server_id):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


class FakeDriver:
    node = ""
    keeps_left_behind = True

    async def ready(self, ex: Executor) -> None:
        pass

    def make(self, tmp: Path) -> Executor:
        return FakeExecutor()

    def command(self, prints: str, exit_code: int, leave: bool = False) -> str:
        return "(told by the test)"

    async def run(
        self, ex: Executor, task_id: str, prints: str, exit_code: int, leave: bool
    ) -> None:
        assert isinstance(ex, FakeExecutor)
        ex.write(task_id, prints + "\n")
        ex.finish(task_id, exit_code, leave=1 if leave else 0)

    def cleanup(self) -> None:
        pass


DRIVERS: dict[str, Callable[[], Any]] = {"local": LocalDriver, "fake": FakeDriver}


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Any:
    made = DRIVERS[request.param]()
    yield made
    made.cleanup()


@pytest.fixture(autouse=True)
def _placed_on_the_drivers_node(driver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "NODE", driver.node)


NODE = ""  # the node tasks are placed on: set by the driver fixture


def request_for(task_id: str, command: str, tmp: Path) -> LaunchRequest:
    return LaunchRequest(
        task_id,
        command,
        {},
        (1,),
        str(tmp),
        session="contract",
        placement=(RankPlacement(NODE, (1,), (1,)),),
    )


def scenario(
    driver: Any,
    tmp: Path,
    body: Callable[[Executor, asyncio.Queue[ExitInfo], asyncio.Queue[str]], Awaitable[None]],
) -> None:
    async def main() -> None:
        ex = driver.make(tmp)
        exits: asyncio.Queue[ExitInfo] = asyncio.Queue()
        gone: asyncio.Queue[str] = asyncio.Queue()
        ex.set_exit_callback(exits.put_nowait)
        ex.set_gone_callback(gone.put_nowait)
        try:
            await asyncio.wait_for(driver.ready(ex), 60)
            await asyncio.wait_for(body(ex, exits, gone), 30)
        finally:
            await ex.terminate_all(0)
            ex.close()

    asyncio.run(main())


async def launch(
    driver: Any, ex: Executor, tmp: Path, task_id: str, prints: str, code: int, leave: bool = False
) -> dict[str, Any]:
    request = request_for(task_id, driver.command(prints, code, leave), tmp)
    handle = ex.start(request, ex.prepare(request))
    json.dumps(handle)  # the store keeps it as JSON
    await driver.run(ex, task_id, prints, code, leave)
    return handle


def test_a_task_ends_once_with_its_code_and_its_output_kept(driver: Any, tmp_path: Path) -> None:
    async def body(ex: Executor, exits: asyncio.Queue[ExitInfo], gone: asyncio.Queue[str]) -> None:
        handle = await launch(driver, ex, tmp_path, "t1", "hello-contract", 3)
        info = await exits.get()
        assert info == ExitInfo("t1", 3, False, 0)
        await asyncio.sleep(0.05)
        assert exits.empty()  # exactly once
        out = ex.output(handle)
        text, size = out.last_lines(5)
        assert "hello-contract" in text and size >= len("hello-contract")
        assert b"hello-contract" in out.tail_bytes(1000)
        follower = out.follower(0)
        assert "hello-contract" in follower.read_new_text()
        assert follower.offset == size
        whole, total = out.read_range(0, size + 100)  # the log viewer's reads
        assert total == size and len(whole) == size and b"hello-contract" in whole
        assert out.read_range(1, 4) == (whole[1:5], size)
        assert out.read_range(size, 10) == (b"", size)
        assert ex.running_ids() == set()

    scenario(driver, tmp_path, body)


def test_kill_reports_a_killed_exit(driver: Any, tmp_path: Path) -> None:
    async def body(ex: Executor, exits: asyncio.Queue[ExitInfo], gone: asyncio.Queue[str]) -> None:
        request = request_for("k", "sleep 300", tmp_path)
        ex.start(request, ex.prepare(request))
        assert ex.running_ids() == {"k"}
        await ex.kill("k", 1)
        info = await exits.get()
        assert info.task_id == "k" and info.killed and info.lingering == 0
        await ex.kill("nobody", 1)  # unknown: nothing happens

    scenario(driver, tmp_path, body)


def test_processes_left_behind_are_counted_and_reported_gone(driver: Any, tmp_path: Path) -> None:
    if not driver.keeps_left_behind:
        pytest.skip("this executor ends what a task leaves behind with the task")

    async def body(ex: Executor, exits: asyncio.Queue[ExitInfo], gone: asyncio.Queue[str]) -> None:
        await launch(driver, ex, tmp_path, "p", "parent", 0, leave=True)
        info = await exits.get()
        assert info.exit_code == 0 and info.lingering >= 1
        assert ex.lingering("p") >= 1
        await ex.kill("p", 1)
        assert await gone.get() == "p"
        assert ex.lingering("p") == 0

    scenario(driver, tmp_path, body)


def test_recover_after_a_restart(driver: Any, tmp_path: Path) -> None:
    """ANT stops (close) and comes back: the same tasks answer running, ended, lost. An
    executor may answer Running for a task it cannot look at yet (a cluster it has not reached)
    and report its end or loss through the exit callback once it knows (base.py, recover)."""
    handles: dict[str, Any] = {}

    async def before(
        ex: Executor, exits: asyncio.Queue[ExitInfo], gone: asyncio.Queue[str]
    ) -> None:
        runs = request_for("runs", "sleep 300", tmp_path)
        handles["runs"] = ex.start(runs, ex.prepare(runs))
        handles["ends"] = await launch(driver, ex, tmp_path, "ends", "bye", 7)
        await exits.get()
        never = request_for("never", "true", tmp_path)
        handles["never"] = ex.prepare(never)  # recorded as starting, never started

    async def main() -> None:
        ex = driver.make(tmp_path)
        ended: asyncio.Queue[ExitInfo] = asyncio.Queue()
        ex.set_exit_callback(ended.put_nowait)
        await asyncio.wait_for(driver.ready(ex), 60)
        await asyncio.wait_for(before(ex, ended, asyncio.Queue()), 30)
        ex.close()  # ANT stops; "runs" keeps running
        again = ex if isinstance(ex, FakeExecutor) else driver.make(tmp_path)
        exits: asyncio.Queue[ExitInfo] = asyncio.Queue()
        again.set_exit_callback(exits.put_nowait)
        again.set_gone_callback(lambda task_id: None)
        try:
            recovery = again.recover(handles)
            assert isinstance(recovery.tasks["runs"], Running)
            await asyncio.wait_for(driver.ready(again), 60)
            later = {}  # what it reports once it knows
            while (
                {"ends", "never"}
                - later.keys()
                - {t for t, r in recovery.tasks.items() if not isinstance(r, Running)}
            ):
                info = await asyncio.wait_for(exits.get(), 30)
                later[info.task_id] = info
            ends, never = recovery.tasks["ends"], recovery.tasks["never"]
            assert ends.exit_code == 7 if isinstance(ends, Ended) else later["ends"].exit_code == 7
            assert isinstance(never, Lost) or later["never"].lost
            assert again.running_ids() == {"runs"}
            await again.kill("runs", 1)  # still controllable
            info = await asyncio.wait_for(exits.get(), 10)
            assert info.task_id == "runs" and info.killed
        finally:
            await again.terminate_all(0)
            again.close()

    asyncio.run(main())


def test_placement_ranks_and_availability(driver: Any, tmp_path: Path) -> None:
    """A task placed on one node has the output of rank 0 only; an executor says whether it
    can start tasks (None, or why not in words) and takes a wake callback."""

    async def body(ex: Executor, exits: asyncio.Queue[ExitInfo], gone: asyncio.Queue[str]) -> None:
        ex.set_wake_callback(lambda: None)
        availability = ex.availability()
        assert availability is None or (isinstance(availability, str) and availability)
        request = dataclasses.replace(
            request_for("r", driver.command("ranked", 0), tmp_path),
            n_nodes=1,
            placement=(RankPlacement(NODE, (1,), (1,)),),
        )
        handle = ex.start(request, ex.prepare(request))
        await driver.run(ex, "r", "ranked", 0, False)
        assert (await exits.get()).lost is None
        assert "ranked" in ex.output(handle, 0).last_lines(5)[0]
        with pytest.raises(InvalidQuery, match=r"^rank: "):
            ex.output(handle, 1)

    scenario(driver, tmp_path, body)


def test_an_ended_task_renamed_keeps_its_output_under_the_new_name(
    driver: Any, tmp_path: Path
) -> None:
    async def body(ex: Executor, exits: asyncio.Queue[ExitInfo], gone: asyncio.Queue[str]) -> None:
        handle = await launch(driver, ex, tmp_path, "old-name", "renamed-contract", 0)
        assert (await exits.get()).exit_code == 0
        renamed = ex.rename_files(handle, "old-name", "new-name")
        json.dumps(renamed)  # the store keeps it as JSON
        assert b"renamed-contract" in ex.output(renamed).tail_bytes(1000)
        assert b"renamed-contract" in ex.output(handle).tail_bytes(1000)  # until drop_names
        ex.drop_names(handle, "old-name")
        assert ex.output(handle).tail_bytes(1000) == b""
        assert b"renamed-contract" in ex.output(renamed).tail_bytes(1000)
        _, location = ex.describe(renamed)
        assert location is None or "new-name" in location

    scenario(driver, tmp_path, body)
