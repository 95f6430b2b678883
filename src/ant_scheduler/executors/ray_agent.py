"""The ANT agent: one long-lived Ray actor per node, which runs that node's share of ANT's tasks.

It is the local executor moved onto the node: tasks start under the same wrapper, in their own
session, marked with ANT_TASK_ID, their exit code written to a file next to their log; so a task
outlives ANT, and the agent finds it again. Output goes to a spool directory on the node
(`<tmp>/ant-agent/<server id>/<node id>/`); the bridge pulls it (`pull`) and appends it to ANT's
log files. The agent also reads the node's GPUs (NVML, or as many simulated GPUs as Ray gave it)
and answers with their samples.

The actor is detached and named (`ant-agent-<server id>-<node id>`): it outlives the bridge and
ANT, and a new bridge finds it by name. It holds all of its node's GPUs in Ray's accounting, so no
other Ray task, actor or job is given them while ANT manages the node.

Everything here runs on the actor's event loop (an async actor): one thread, like ANT's own.
A task has at most one rank on a node (a gang's ranks are on distinct nodes), so the task id is
the key.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from ant_scheduler.executors.base import ExitInfo, LaunchError, LaunchRequest
from ant_scheduler.executors.local import LocalExecutor
from ant_scheduler.executors.logfiles import LogFollower
from ant_scheduler.monitor.base import GpuBackend, GpuInfo, GpuSample

CHUNK_BYTES = 1 << 20  # at most this much of one task's output per pull
SAMPLE_SECONDS = 1.0  # how often the node's GPUs are read
FORGET_AFTER_SECONDS = 3600.0  # an ended task's exit code and spool are kept this long


def _gpu_backend(ray_gpu_ids: list[int]) -> GpuBackend:
    """NVML when the node has it (only the GPUs Ray gave the agent), else simulated GPUs."""
    try:
        from ant_scheduler.monitor.nvml import NvmlGpuBackend

        return NvmlGpuBackend(only=ray_gpu_ids)
    except Exception:  # no NVML, no driver, a GPU missing: simulate what Ray reports
        from ant_scheduler.monitor.fake import FakeGpuBackend

        count = max(ray_gpu_ids, default=-1) + 1
        return FakeGpuBackend(count, only=ray_gpu_ids)


def _info_dict(info: GpuInfo) -> dict[str, Any]:
    return {
        "local": info.index,
        "uuid": info.uuid,
        "name": info.name,
        "mem_total": info.mem_total,
        "pci_bus_id": info.pci_bus_id,
    }


def _sample_dict(sample: GpuSample) -> dict[str, Any]:
    return {
        "local": sample.index,
        "util": sample.util,
        "mem_used": sample.mem_used,
        "mem_total": sample.mem_total,
        "temperature": sample.temperature,
        "power_watts": sample.power_watts,
        "processes": [[p.pid, p.used_memory] for p in sample.processes],
        "error": sample.error,
    }


class _Rank:
    """One task's rank on this node: its handle, its spool log, and how it ended."""

    def __init__(self, task_id: str, handle: dict[str, Any]) -> None:
        self.task_id = task_id
        self.handle = handle
        self.log = Path(handle["log"])
        self.pid: int | None = handle.get("pid")
        self.exit: dict[str, Any] | None = None  # {"code", "killed"} once ended
        self.ended_at: float | None = None
        self.sent = 0  # bytes of its output sent to the bridge
        self.exit_sent = False


class NodeAgent:
    """The agent's logic (the Ray actor class is made from it by `actor_class()`)."""

    def __init__(
        self,
        server_id: str,
        node_id: str,
        gpu_ids: list[int] | None = None,
        idle_seconds: float = 60.0,
    ) -> None:
        self.server_id = server_id
        self.node_id = node_id
        self.idle_seconds = idle_seconds
        self.last_pull = time.monotonic()
        if gpu_ids is None:
            import ray

            gpu_ids = [int(i) for i in ray.get_gpu_ids()]
        # Ray set the actor's own CUDA_VISIBLE_DEVICES; each task gets its own from ANT.
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        self.gpu_ids = sorted(gpu_ids)
        self.spool = self.spool_of(server_id) / node_id[:16]
        self.spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Its own marker: agents of one ANT on the same host (test clusters) must not take each
        # other's processes for their own.
        self.executor = LocalExecutor(
            log_dir=self.spool, server_id=f"{server_id}.{node_id[:16]}", become_subreaper=False
        )
        self.executor.set_exit_callback(self._on_exit)
        self.ranks: dict[str, _Rank] = {}
        self.unsent: dict[str, _Rank] = {}  # ranks with output or an exit not sent yet
        self.bridge = ""  # the bridge pulling now (the latest to call)
        self.forgot_at = 0.0
        self.backend = _gpu_backend(self.gpu_ids)
        self.samples: list[dict[str, Any]] = []
        self.sampled_at = 0.0
        self.answered_sample = 0.0  # the last sample a pull returned (each is sent once)
        self.changed = asyncio.Event()
        self.chores: set[asyncio.Future[None]] = set()  # kills nobody awaits, kept referenced
        self.started_at = time.time()
        self._recovered = False

    @staticmethod
    def spool_of(server_id: str) -> Path:
        """Where the agents of one ANT keep their tasks' output and state on a node."""
        return Path(tempfile.gettempdir()) / "ant-agent" / server_id

    # ------------------------------------------------------------------ about the node

    async def info(self) -> dict[str, Any]:
        await self._recover_once()
        return {
            "node_id": self.node_id,
            "pid": os.getpid(),
            "ip": _node_ip(),
            "hostname": socket.gethostname(),
            "gpus": [_info_dict(i) for i in self.backend.gpus()],
            "running": sorted(t for t, r in self.ranks.items() if r.exit is None),
        }

    async def free_port(self) -> int:
        """A TCP port free on this node now (for MASTER_PORT)."""
        with socket.socket() as s:
            s.bind(("", 0))
            port: int = s.getsockname()[1]
            return port

    # ------------------------------------------------------------------ tasks

    async def start(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Start one rank; {"pid"} or {"error": why it could not start}."""
        await self._recover_once()
        task_id = spec["task_id"]
        old = self.ranks.get(task_id)
        if old is not None and old.exit is None:
            return {"error": f"task {task_id!r} is already running on this node"}
        cwd = spec["cwd"] if os.path.isdir(spec["cwd"]) else os.path.expanduser("~")
        request = LaunchRequest(
            task_id=task_id,
            command=spec["command"],
            env=spec["env"],
            gpu_ids=tuple(spec["gpu_ids"]),
            cwd=cwd,
            session=spec["session"],
            workdir=spec.get("workdir"),
            conda=spec.get("conda"),
        )
        try:
            handle = self.executor.prepare(request)
            _remove_old(Path(handle["log"]))
            handle = {**self.executor.start(request, handle), "gpu_ids": list(request.gpu_ids)}
        except LaunchError as exc:
            return {"error": str(exc)}
        except Exception as exc:  # anything else fails this rank, never the agent
            return {"error": f"{type(exc).__name__}: {exc}"}
        rank = _Rank(task_id, handle)
        self.ranks[task_id] = rank
        self.unsent[task_id] = rank
        self._save(rank)
        self._refresh_ant_processes()
        self.changed.set()  # a pull in progress takes the new task in at once
        return {"pid": handle.get("pid")}

    async def kill(self, task_id: str, grace_seconds: float) -> None:
        await self.executor.kill(task_id, grace_seconds)

    async def status(self, task_ids: list[str]) -> dict[str, Any]:
        """For a new bridge: each task is "running", {"code", "killed"} or "unknown"."""
        await self._recover_once()
        out: dict[str, Any] = {}
        for task_id in task_ids:
            rank = self.ranks.get(task_id)
            if rank is None:
                out[task_id] = "unknown"
            else:
                out[task_id] = "running" if rank.exit is None else dict(rank.exit)
        return out

    async def idle(self) -> bool:
        """Nothing runs here and every exit was sent: the agent may go (ANT stopped cleanly)."""
        return all(r.exit is not None and r.exit_sent for r in self.ranks.values())

    async def forget(self, task_id: str) -> None:
        rank = self.ranks.pop(task_id, None)
        if rank is not None:
            self.unsent.pop(task_id, None)
            self._drop(rank)

    async def resume(self, cursors: dict[str, int], bridge: str = "") -> None:
        """A new bridge has received each task's output up to its cursor: go on from there
        (and report its exit again, if it has ended)."""
        self.bridge = bridge
        for task_id, offset in cursors.items():
            rank = self.ranks.get(task_id)
            if rank is not None:
                rank.sent, rank.exit_sent = offset, False
                self.unsent[task_id] = rank
        self.changed.set()

    async def pull(self, wait: float, bridge: str = "") -> dict[str, Any]:
        """Output not sent yet, exits once all of a task's output was sent (each once), and the
        GPU samples when new. Waits up to `wait` seconds for something to say.

        Only the latest bridge is answered: a pull still waiting here for a bridge that died
        must not take output its successor would then never receive."""
        await self._recover_once()
        self.last_pull = time.monotonic()
        self.bridge = bridge
        deadline = time.monotonic() + wait
        while True:
            if self.bridge != bridge:
                return {"chunks": {}, "exits": {}, "samples": []}
            self.changed.clear()
            self._sample_if_due()
            answer = self._collect()
            left = deadline - time.monotonic()
            if answer["chunks"] or answer["exits"] or answer["samples"] or left <= 0:
                return answer
            try:
                # Output is not signalled: look again soon, or at once when a task ends.
                await asyncio.wait_for(self.changed.wait(), min(left, 0.05))
            except TimeoutError:
                pass

    # ------------------------------------------------------------------ inside

    def _collect(self) -> dict[str, Any]:
        chunks: dict[str, list[Any]] = {}
        exits: dict[str, Any] = {}
        for task_id, rank in list(self.unsent.items()):  # only those with something to say
            data = LogFollower(rank.log, rank.sent).read_new(CHUNK_BYTES)
            if data:
                chunks[task_id] = [rank.sent, data]
                rank.sent += len(data)
            elif rank.exit is not None:  # all its output has been sent: how much it was
                exits[task_id] = {**rank.exit, "size": rank.sent}
                rank.exit_sent = True
                del self.unsent[task_id]
        samples = self.samples if self.sampled_at > self.answered_sample else []
        if samples:
            self.answered_sample = self.sampled_at
        self._forget_old()
        return {"chunks": chunks, "exits": exits, "samples": samples}

    def _sample_if_due(self) -> None:
        now = time.monotonic()
        if self.sampled_at and now - self.sampled_at < SAMPLE_SECONDS:
            return
        self.sampled_at = now
        try:
            self.samples = [_sample_dict(s) for s in self.backend.sample()]
        except Exception as exc:  # a broken reading must not stop the output
            self.samples = [
                {"local": i, "error": f"cannot read GPU: {exc}", "processes": []}
                for i in self.gpu_ids
            ]

    def _on_exit(self, info: ExitInfo) -> None:
        rank = self.ranks.get(info.task_id)
        if rank is None:
            return
        if info.lingering:  # on a node, what a task leaves behind ends with it
            ender = asyncio.ensure_future(self.executor.kill(info.task_id, 0.0))
            self.chores.add(ender)
            ender.add_done_callback(self.chores.discard)
        code = info.exit_code
        rank.exit = {"code": code, "killed": info.killed}
        rank.ended_at = time.time()
        self._save(rank)
        self._refresh_ant_processes()
        self.changed.set()

    def _refresh_ant_processes(self) -> None:
        setter = getattr(self.backend, "set_ant_processes", None)
        if setter is None:
            return
        by_gpu: dict[int, list[int]] = {}
        for rank in self.unsent.values():  # every running rank is among them
            if rank.exit is None and rank.pid is not None:
                for index in rank.handle.get("gpu_ids", []):
                    by_gpu.setdefault(int(index), []).append(rank.pid)
        setter(by_gpu)

    def _forget_old(self) -> None:
        """Ended tasks whose exit was sent long ago go (looked at once a minute)."""
        now = time.time()
        if now - self.forgot_at < 60:
            return
        self.forgot_at = now
        old = [
            t
            for t, r in self.ranks.items()
            if r.exit_sent and r.ended_at is not None and now - r.ended_at > FORGET_AFTER_SECONDS
        ]
        for task_id in old:
            self._drop(self.ranks.pop(task_id))

    async def _leave_when_abandoned(self) -> None:
        """No ANT has pulled for idle_seconds and nothing runs or waits to be reported here: the
        agent goes, and its node's GPUs go back to Ray (a new ANT makes a new agent)."""
        while True:
            await asyncio.sleep(1.0)
            quiet = time.monotonic() - self.last_pull > self.idle_seconds
            if quiet and await self.idle():
                import ray

                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
                return

    # ------------------------------------------------------------------ its own restarts

    @property
    def _state_dir(self) -> Path:
        return self.spool / "tasks"

    def _save(self, rank: _Rank) -> None:
        """What a restarted agent needs to find the task again (Ray restarts a dead actor): one
        small file per task, so a start or an end costs the same however many came before."""
        import json

        entry: dict[str, Any] = {"task_id": rank.task_id, "handle": rank.handle}
        entry.update({"exit": rank.exit, "ended_at": rank.ended_at})
        self._state_dir.mkdir(mode=0o700, exist_ok=True)
        path = self._state_dir / f"{rank.task_id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, path)

    def _drop(self, rank: _Rank) -> None:
        _remove_old(rank.log)
        try:
            (self._state_dir / f"{rank.task_id}.json").unlink()
        except OSError:
            pass

    async def _recover_once(self) -> None:
        """After the actor itself restarted: adopt the tasks the previous agent started."""
        if self._recovered:
            return
        self._recovered = True
        self.chores.add(asyncio.ensure_future(self._leave_when_abandoned()))
        import json

        running = {}
        for path in sorted(self._state_dir.glob("*.json")):
            try:
                entry = json.loads(path.read_text())
                rank = _Rank(entry["task_id"], entry["handle"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # half written when the agent died: that start never answered
            rank.exit, rank.ended_at = entry.get("exit"), entry.get("ended_at")
            self.ranks[rank.task_id] = rank
            self.unsent[rank.task_id] = rank
            if rank.exit is None:
                running[rank.task_id] = rank.handle
        if not running:
            return
        recovery = self.executor.recover(running)
        for task_id, result in recovery.tasks.items():
            rank = self.ranks[task_id]
            code = getattr(result, "exit_code", None)
            if hasattr(result, "handle"):
                continue  # still running, watched again
            rank.exit = {"code": code, "killed": False}
            rank.ended_at = time.time()
            self._save(rank)
        self._refresh_ant_processes()


def _remove_old(path: Path) -> None:
    for p in (path, path.with_suffix(".exit")):
        try:
            p.unlink()
        except OSError:
            pass


def _node_ip() -> str:
    try:
        import ray

        return str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
    except Exception:
        return "127.0.0.1"


def actor_class() -> Any:
    """NodeAgent as a Ray actor class (imports Ray: only the bridge calls it)."""
    import ray

    return ray.remote(NodeAgent)
