"""The Ray executor's agent and bridge logic in-process, without a cluster (the agent is a plain
object; Ray only wraps it): output is sent once and in order, an exit only after all output,
and a chunk lost on the way (an answer that died with a bridge) is asked for again before the
end is reported, so ANT's log is always whole. Real processes, real files."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from ant_scheduler.executors.ray_agent import NodeAgent
from ant_scheduler.executors.ray_bridge import Bridge


class _Remote:
    """Stands for an actor handle: records `resume.remote(...)` calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, int], str]] = []
        self.resume = self

    def remote(self, cursors: dict[str, int], bridge: str) -> None:
        self.calls.append((cursors, bridge))


async def _pull_until(agent: NodeAgent, bridge: str, key: str) -> dict[str, Any]:
    for _ in range(200):
        answer = await agent.pull(0.1, bridge)
        if answer[key]:
            return answer
    raise AssertionError(f"no {key} in time")


def test_an_exit_waits_until_the_log_holds_all_output(tmp_path: Path) -> None:
    server_id = f"unit-{uuid.uuid4().hex[:8]}"
    out = io.StringIO()
    bridge = Bridge("unused", server_id, out)
    log = tmp_path / "ant" / "t.log"
    log.parent.mkdir()
    log.touch()
    bridge.logs[("t", "node-1")] = (str(log), 0)
    handle = _Remote()

    async def main() -> None:
        agent = NodeAgent(server_id, "node-1", gpu_ids=[0], idle_seconds=3600)
        spec = {"task_id": "t", "command": "echo one; echo two; exit 3", "env": {}}
        spec.update({"cwd": str(tmp_path), "session": "s", "gpu_ids": [0]})
        assert "pid" in await agent.start(spec)
        # The first answer with output is lost (the bridge that asked died).
        lost = await _pull_until(agent, bridge.bridge_id, "chunks")
        assert lost["chunks"]["t"][0] == 0
        end = await _pull_until(agent, bridge.bridge_id, "exits")
        assert end["exits"]["t"]["size"] == len(b"one\ntwo\n")
        bridge.deliver("node-1", end, handle)
        assert out.getvalue() == ""  # not reported: ANT's log is short
        assert handle.calls == [({"t": 0}, bridge.bridge_id)]
        await agent.resume({"t": 0}, bridge.bridge_id)
        bridge.deliver("node-1", await _pull_until(agent, bridge.bridge_id, "chunks"), handle)
        bridge.deliver("node-1", await _pull_until(agent, bridge.bridge_id, "exits"), handle)
        # A pull left waiting by a bridge that a newer one replaced gets nothing: the output
        # goes to the newer bridge.
        stale = asyncio.ensure_future(agent.pull(2.0, bridge.bridge_id))
        await asyncio.sleep(0.1)
        await agent.resume({"t": 0}, "newer")
        assert await stale == {"chunks": {}, "exits": {}, "samples": []}
        again = await _pull_until(agent, "newer", "chunks")
        assert again["chunks"]["t"] == [0, b"one\ntwo\n"]
        agent.executor.close()

    try:
        asyncio.run(main())
    finally:
        shutil.rmtree(NodeAgent.spool_of(server_id), ignore_errors=True)
    assert log.read_text() == "one\ntwo\n"
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert events == [{"ev": "exit", "task": "t", "node_id": "node-1", "code": 3, "killed": False}]
