"""The executor contract (tests/unit/test_executor_contract.py) against the Ray executor, on the
real cluster of tests/ray/conftest.py: the same tests, with a driver that places tasks on node-a
and waits until the executor has reached the cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ant_scheduler.executors.base import Executor
from ant_scheduler.executors.ray import RayExecutor
from tests.reliability.reality import task_processes
from tests.unit.test_executor_contract import (
    LocalDriver,
    _placed_on_the_drivers_node,  # noqa: F401  (the autouse fixture, for this module too)
    test_a_task_ends_once_with_its_code_and_its_output_kept,  # noqa: F401
    test_an_ended_task_renamed_keeps_its_output_under_the_new_name,  # noqa: F401
    test_kill_reports_a_killed_exit,  # noqa: F401
    test_placement_ranks_and_availability,  # noqa: F401
    test_processes_left_behind_are_counted_and_reported_gone,  # noqa: F401
    test_recover_after_a_restart,  # noqa: F401
)


class RayDriver(LocalDriver):
    """Real shell commands, as the local driver's, run by the agent of node-a."""

    node = "node-a"
    keeps_left_behind = False  # the agent ends them with the task, on its node

    def __init__(self, address: str) -> None:
        super().__init__()  # one server id: one ANT, whose agents are reused
        self.address = address

    def make(self, tmp: Path) -> Executor:
        return RayExecutor(
            address=self.address,
            server_id=self.server_id,
            log_dir=tmp / "logs",
            state_file=tmp / "ray_nodes.json",
            kill_grace_seconds=1,
            agent_idle_seconds=1,
        )

    async def ready(self, ex: Executor) -> None:
        assert isinstance(ex, RayExecutor)
        ex.recover({})  # what the engine does first; it starts the bridge
        while ex.availability() is not None or ex._node_named(self.node) is None:
            await asyncio.sleep(0.05)

    def cleanup(self) -> None:
        import os
        import signal

        for proc in task_processes():  # agents mark with "<server id>.<node id>"
            if not proc.server_id.startswith(self.server_id + "."):
                continue
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def driver(ray_cluster: Any) -> Iterator[RayDriver]:
    made = RayDriver(ray_cluster.address)
    yield made
    made.cleanup()
