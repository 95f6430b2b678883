"""Tasks on a Ray cluster (RUNNER_executor "ray", RAY_address): ANT decides, Ray carries out.

ANT keeps the queue, the placement (which node, which GPUs), the history and the logs; Ray
provides the nodes, their membership and the transport. On each node a detached ANT agent actor
(executors/ray_agent.py) holds the node's GPUs in Ray's accounting and runs the tasks there with
the local executor's machinery. ANT talks to the cluster through a bridge process
(executors/ray_bridge.py) that is the Ray driver, so that the cluster going away never takes ANT
down. See docs/scale-out.md for the choice and for what happens on each failure.

Nodes and GPUs: each node gets a name (its Ray label `ant-name`, else its host name, made unique
with the start of its node id) and each of its GPUs a global index, both kept in
`ray_nodes.json` in ANT's state directory, so a GPU keeps its index (and its toggle) across
restarts. The GPU backend ANT's pool reads (`gpu_backend()`) is fed by the agents' samples.

A task has one rank per node it runs on; the exit of a task is reported once every rank ended:
its code is the first failing rank's (the other ranks are then killed), else 0. A rank whose node
left the cluster makes the whole task `lost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ant_scheduler.core.errors import InvalidQuery
from ant_scheduler.executors.base import (
    ExitCallback,
    ExitInfo,
    FoundProcess,
    GoneCallback,
    Handle,
    LaunchError,
    LaunchRequest,
    Lost,
    Reattached,
    Recovery,
    Running,
)
from ant_scheduler.executors.logfiles import (
    LogFileOutput,
    link_files,
    log_path_for,
    renamed_handle,
    task_files,
    unlink_files,
)
from ant_scheduler.monitor.base import GpuInfo, GpuProcess, GpuSample

BRIDGE_RESTART_SECONDS = 2.0


@dataclass
class NodeState:
    node_id: str
    name: str
    ip: str = ""
    alive: bool = False
    gone_reason: str | None = None
    gpus: list[GpuInfo] = field(default_factory=list)  # global indices
    samples: dict[int, GpuSample] = field(default_factory=dict)  # by global index


@dataclass
class _RayTask:
    task_id: str
    handle: Handle
    ranks: list[str]  # node id per rank
    done: dict[str, int | None] = field(default_factory=dict)  # node id -> exit code
    failed_code: int | None = None  # the first failing rank's code
    lost: str | None = None
    error: str | None = None  # could not be started
    killed: bool = False
    reported: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class RayExecutor:
    name = "ray"

    def __init__(
        self,
        *,
        address: str,
        server_id: str,
        log_dir: Path,
        state_file: Path,
        kill_grace_seconds: float = 10.0,
        agent_idle_seconds: float = 60.0,
        connect_timeout: float = 30.0,
        bridge_log: Path | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.agent_idle_seconds = agent_idle_seconds
        self.address = address
        self.server_id = server_id
        self.log_dir = log_dir.resolve()
        self.state_file = state_file
        self.kill_grace = kill_grace_seconds
        self.bridge_log = bridge_log or self.log_dir / "ray_bridge.log"
        self.nodes: dict[str, NodeState] = {}
        self.tasks: dict[str, _RayTask] = {}
        self._callback: ExitCallback = lambda info: None
        self._wake: Callable[[], None] = lambda: None
        self._lock = threading.Lock()  # the GPU backend reads nodes from the monitor's thread
        self._proc: asyncio.subprocess.Process | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closed = False
        self._connected = False
        self._reconciled = False
        self._detail: str | None = f"connecting to the Ray cluster at {address}"
        self._down_since: float | None = time.time()
        self._outbox: list[dict[str, Any]] = []  # operations waiting for a bridge
        self._recover_waiters: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._names, self._indices = self._load_state()

    # ------------------------------------------------------------------ the seam

    def set_exit_callback(self, callback: ExitCallback) -> None:
        self._callback = callback

    def set_gone_callback(self, callback: GoneCallback) -> None:
        pass  # what a task leaves behind on a node is ended with it there (ray_agent.py)

    def set_wake_callback(self, callback: Callable[[], None]) -> None:
        self._wake = callback

    def availability(self) -> str | None:
        if self._connected and self._reconciled:
            return None
        return self._detail or f"Ray cluster at {self.address} unreachable"

    def prepare(self, request: LaunchRequest) -> Handle:
        placement = list(request.placement)
        if not placement:
            raise LaunchError("no node was chosen for the task")
        ranks = []
        for index, rank in enumerate(placement):
            node = self._node_named(rank.node)
            if node is None or not node.alive:
                raise LaunchError(f"node {rank.node!r} is not in the Ray cluster")
            try:
                log = log_path_for(self.log_dir, request.session, request.task_id, request.attempt)
            except ValueError as exc:
                raise LaunchError(str(exc)) from None
            if index:
                log = log.with_name(f"{log.name}.rank{index}")
            ranks.append(
                {
                    "node_id": node.node_id,
                    "node": node.name,
                    "gpu_ids": list(rank.local_ids),
                    "log": str(log),
                    # A restored task appends to its log: this run's output starts here.
                    "base": _size(log),
                }
            )
        return {"ranks": ranks}

    def start(self, request: LaunchRequest, handle: Handle) -> Handle:
        if self.availability() is not None:
            raise LaunchError(str(self.availability()))
        ranks = handle["ranks"]
        master = self.nodes.get(ranks[0]["node_id"])
        for rank in ranks:
            _make_log(Path(rank["log"]))
        self.tasks[request.task_id] = _RayTask(
            request.task_id, handle, [r["node_id"] for r in ranks]
        )
        self._send(
            {
                "op": "start",
                "task": request.task_id,
                "master_addr": master.ip if master is not None else "127.0.0.1",
                "spec": {
                    "command": request.command,
                    "env": dict(request.env),
                    "cwd": request.cwd,
                    "session": request.session,
                    "workdir": request.workdir,
                    "conda": request.conda,
                },
                "ranks": [
                    {
                        "node_id": r["node_id"],
                        "node": r["node"],
                        "gpu_ids": r["gpu_ids"],
                        "log": r["log"],
                        "base": r.get("base", 0),
                    }
                    for r in ranks
                ],
            }
        )
        return handle

    def describe(self, handle: Handle) -> tuple[int | None, str | None]:
        ranks = handle.get("ranks") or [{}]
        log = ranks[0].get("log")
        return None, (log if isinstance(log, str) else None)

    def settle(self, handle: Handle) -> Handle:
        return handle

    def rename_files(self, handle: Handle, old_id: str, new_id: str) -> Handle:
        renamed, pairs = renamed_handle(handle, old_id, new_id)
        link_files(pairs)
        return renamed

    def drop_names(self, handle: Handle, task_id: str) -> None:
        unlink_files(task_files(handle, task_id))

    def output(self, handle: Handle, rank: int = 0) -> LogFileOutput:
        ranks = handle.get("ranks") or []
        if not 0 <= rank < len(ranks):
            raise InvalidQuery(f"rank: the task has no rank {rank} (ranks 0 to {len(ranks) - 1})")
        return LogFileOutput(Path(str(ranks[rank].get("log", ""))))

    def recover(self, running: Mapping[str, Handle | None]) -> Recovery:
        """Every task with a handle is taken as running; the bridge says what became of it once
        it connects (an exit, or lost), like after any loss of the cluster."""
        self._ensure_bridge()
        tasks: dict[str, Reattached] = {}
        for task_id, handle in running.items():
            if not handle or not handle.get("ranks"):
                tasks[task_id] = Lost("it was being started on the Ray cluster when ANT stopped")
                continue
            ranks = [r["node_id"] for r in handle["ranks"]]
            self.tasks[task_id] = _RayTask(task_id, handle, ranks)
            tasks[task_id] = Running(handle)
        return Recovery(tasks=tasks)

    def scan(self) -> list[FoundProcess]:
        return []  # the processes are on the nodes; their agents watch them

    def lingering(self, task_id: str) -> int:
        return 0

    async def kill(self, task_id: str, grace_seconds: float) -> None:
        task = self.tasks.get(task_id)
        if task is None or task.reported:
            return
        task.killed = True
        self._kill_ranks(task, grace_seconds)
        await task.ended.wait()

    async def terminate_all(self, grace_seconds: float) -> None:
        await asyncio.gather(*(self.kill(t, grace_seconds) for t in list(self.running_ids())))

    def running_ids(self) -> set[str]:
        return {t for t, task in self.tasks.items() if not task.reported}

    def close(self) -> None:
        """Stop the bridge. The agents and the tasks keep running, for the next ANT."""
        self._closed = True
        if self._runner is not None:
            self._runner.cancel()
        proc = self._proc
        if proc is not None and proc.returncode is None and proc.stdin is not None:
            # The bridge releases idle agents (their GPUs go back to Ray), then exits.
            with contextlib.suppress(OSError, RuntimeError):
                if self._connected:
                    proc.stdin.write(b'{"op": "release"}\n')
                proc.stdin.close()

    def gpu_backend(self) -> RayGpuBackend:
        return RayGpuBackend(self)

    # ------------------------------------------------------------------ the bridge

    def _ensure_bridge(self) -> None:
        if self._runner is None and not self._closed:
            self._runner = asyncio.get_running_loop().create_task(self._run_bridges())

    async def _run_bridges(self) -> None:
        while not self._closed:
            try:
                await self._run_bridge()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                print(f"ant: Ray bridge failed: {exc!r}", file=sys.stderr, flush=True)
            self._set_down(f"Ray cluster at {self.address} unreachable (its bridge stopped)")
            await asyncio.sleep(BRIDGE_RESTART_SECONDS)

    async def _run_bridge(self) -> None:
        self.bridge_log.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.bridge_log, "ab")  # noqa: SIM115 (the child holds it)
        env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "ant_scheduler.executors.ray_bridge",
                self.address,
                self.server_id,
                str(self.agent_idle_seconds),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=env,
                # Not in ANT's process group: a Ctrl+C meant for ANT does not reach it (ANT
                # ends it by closing its stdin, after asking it to release idle agents).
                start_new_session=True,
                limit=1 << 26,  # a line carries up to a few MB of samples
            )
        finally:
            log.close()
        assert self._proc.stdout is not None
        loop = asyncio.get_running_loop()
        # Ray's connect can hang for minutes on an address where nothing answers yet: a bridge
        # that has not connected (nor made progress with the agents) in time is started over.
        deadline = loop.time() + self.connect_timeout
        while True:
            wait = None if self._connected else max(0.1, deadline - loop.time())
            try:
                line = await asyncio.wait_for(self._proc.stdout.readline(), wait)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)  # its own session
                break
            if not line:
                break
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("ev") == "node":
                deadline = loop.time() + self.connect_timeout
            self._on_event(event)
        await self._proc.wait()

    def _send(self, op: dict[str, Any]) -> None:
        proc = self._proc
        if not self._connected or proc is None or proc.stdin is None:
            self._outbox.append(op)
            return
        proc.stdin.write((json.dumps(op) + "\n").encode())

    def _set_down(self, detail: str) -> None:
        was_up = self._connected and self._reconciled
        self._connected = self._reconciled = False
        self._detail = detail
        if self._down_since is None:
            self._down_since = time.time()
        with self._lock:
            for node in self.nodes.values():
                node.alive = False
        if was_up:
            self._wake()

    # ------------------------------------------------------------------ events from the bridge

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("ev")
        if kind == "cluster":
            if event["connected"]:
                self._connected = True
                self._reconcile()
            else:
                since = time.strftime("%H:%M:%S", time.localtime(self._down_since or time.time()))
                self._set_down(
                    f"Ray cluster at {self.address} unreachable since {since}: {event['detail']}"
                )
        elif kind == "node":
            self._on_node(event)
        elif kind == "node_gone":
            self._on_node_gone(event["node_id"], event["reason"])
        elif kind == "samples":
            self._on_samples(event["node_id"], event["samples"])
        elif kind == "started":
            task = self.tasks.get(event["task"])
            if task is not None and (event.get("error") or event.get("lost")):
                if event.get("lost"):
                    task.lost = f"its node left the Ray cluster as it started ({event['lost']})"
                else:
                    task.error = event["error"]
                task.done = dict.fromkeys(task.ranks)
                self._maybe_report(task)
        elif kind == "exit":
            self._on_rank_exit(event["task"], event["node_id"], event["code"], event["killed"])
        elif kind == "recovered":
            waiter = self._recover_waiters.pop(event["id"], None)
            if waiter is not None and not waiter.done():
                waiter.set_result(event["tasks"])

    def _reconcile(self) -> None:
        """After a (re)connection: ask what became of every task ANT thinks runs, then start."""
        tracked = {
            t.task_id: [
                {"node_id": r["node_id"], "log": r["log"], "base": r.get("base", 0)}
                for r in t.handle["ranks"]
            ]
            for t in self.tasks.values()
            if not t.reported
        }
        self._next_id += 1
        request_id = self._next_id
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._recover_waiters[request_id] = waiter
        self._send({"op": "recover", "id": request_id, "tasks": tracked})

        def done(future: asyncio.Future[dict[str, Any]]) -> None:
            if future.cancelled() or not self._connected:
                return
            for task_id, statuses in future.result().items():
                task = self.tasks.get(task_id)
                if task is None:
                    continue
                for node_id, status in zip(task.ranks, statuses, strict=True):
                    if status in ("unknown", "node_gone") and node_id not in task.done:
                        name = self._name_of(node_id)
                        why = "left the cluster" if status == "node_gone" else "does not know it"
                        self._rank_lost(task, node_id, f"its node {name} {why}")
            self._reconciled = True
            self._detail = None
            self._down_since = None
            outbox, self._outbox = self._outbox, []
            for op in outbox:
                self._send(op)
            self._wake()

        waiter.add_done_callback(done)

    def _on_node(self, event: dict[str, Any]) -> None:
        node_id = event["node_id"]
        name = self._names.get(node_id) or self._new_name(event)
        gpus = []
        for gpu in event["gpus"]:
            key = f"{node_id}:{gpu['local']}"
            index = self._indices.get(key)
            if index is None:
                index = max(self._indices.values(), default=-1) + 1
                self._indices[key] = index
            gpus.append(
                GpuInfo(
                    index=index,
                    uuid=gpu["uuid"],
                    name=gpu["name"],
                    mem_total=int(gpu["mem_total"]),
                    pci_bus_id=gpu.get("pci_bus_id", ""),
                    node=name,
                    local_index=int(gpu["local"]),
                )
            )
        self._names[node_id] = name
        self._save_state()
        with self._lock:
            self.nodes[node_id] = NodeState(node_id, name, event.get("ip", ""), True, None, gpus)
        self._wake()

    def _new_name(self, event: dict[str, Any]) -> str:
        labels = event.get("labels") or {}
        taken = set(self._names.values())
        wanted = str(labels.get("ant-name") or event.get("hostname") or "node")
        if wanted in taken:
            wanted = f"{wanted}-{event['node_id'][:6]}"
        return wanted

    def _on_node_gone(self, node_id: str, reason: str) -> None:
        with self._lock:
            node = self.nodes.get(node_id)
            if node is not None:
                node.alive = False
                node.gone_reason = reason
        name = self._name_of(node_id)
        for task in list(self.tasks.values()):
            if node_id in task.ranks and node_id not in task.done and not task.reported:
                self._rank_lost(task, node_id, f"node {name} left the Ray cluster ({reason})")
        self._wake()

    def _on_samples(self, node_id: str, samples: list[dict[str, Any]]) -> None:
        node = self.nodes.get(node_id)
        if node is None:
            return
        by_local = {g.local_index: g.index for g in node.gpus}
        fresh = {}
        for s in samples:
            index = by_local.get(s["local"])
            if index is None:
                continue
            fresh[index] = GpuSample(
                index=index,
                util=float(s.get("util") or 0.0),
                mem_used=int(s.get("mem_used") or 0),
                mem_total=int(s.get("mem_total") or 0),
                temperature=s.get("temperature"),
                power_watts=s.get("power_watts"),
                processes=tuple(GpuProcess(int(p), int(m)) for p, m in s.get("processes", [])),
                error=s.get("error"),
            )
        with self._lock:
            node.samples = fresh

    # ------------------------------------------------------------------ how a task ends

    def _on_rank_exit(self, task_id: str, node_id: str, code: int | None, killed: bool) -> None:
        task = self.tasks.get(task_id)
        if task is None or task.reported or node_id in task.done:
            return
        task.done[node_id] = code
        if code != 0 and task.failed_code is None and task.lost is None and not task.killed:
            task.failed_code = code if code is not None else 1
            self._kill_ranks(task, self.kill_grace)  # one rank failed: the task has failed
        self._maybe_report(task)

    def _rank_lost(self, task: _RayTask, node_id: str, reason: str) -> None:
        task.done[node_id] = None
        if task.lost is None:
            task.lost = reason
            self._kill_ranks(task, 0.0)
        self._maybe_report(task)

    def _kill_ranks(self, task: _RayTask, grace: float) -> None:
        alive = [n for n in task.ranks if n not in task.done]
        if alive:
            self._send({"op": "kill", "task": task.task_id, "nodes": alive, "grace": grace})
        for node_id in alive:  # a rank on a node that is gone cannot report
            node = self.nodes.get(node_id)
            if node is not None and not node.alive and node.gone_reason is not None:
                task.done[node_id] = None

    def _maybe_report(self, task: _RayTask) -> None:
        if task.reported or len(task.done) < len(task.ranks):
            return
        task.reported = True
        task.ended.set()
        if task.lost is not None:
            info = ExitInfo(task.task_id, None, killed=False, lost=task.lost)
        elif task.error is not None:
            info = ExitInfo(task.task_id, None, killed=False, reason=task.error)
        elif task.killed:
            info = ExitInfo(task.task_id, task.failed_code, killed=True)
        else:
            code = task.failed_code if task.failed_code is not None else 0
            info = ExitInfo(task.task_id, code, killed=False)
        self.tasks.pop(task.task_id, None)
        self._callback(info)

    # ------------------------------------------------------------------ names and indices

    def _node_named(self, name: str) -> NodeState | None:
        for node in self.nodes.values():
            if node.name == name:
                return node
        return None

    def _name_of(self, node_id: str) -> str:
        return self._names.get(node_id, node_id[:12])

    def _load_state(self) -> tuple[dict[str, str], dict[str, int]]:
        try:
            data = json.loads(self.state_file.read_text())
            return dict(data["names"]), {k: int(v) for k, v in data["gpus"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}, {}

    def _save_state(self) -> None:
        data = json.dumps({"names": self._names, "gpus": self._indices}, indent=1)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(data)
        os.replace(tmp, self.state_file)


class RayGpuBackend:
    """The GPUs of every node ANT has seen, with the agents' last samples (the pool's backend).
    A GPU of a node that is gone, or of a cluster ANT cannot reach, reads as an error."""

    name = "ray"

    def __init__(self, executor: RayExecutor) -> None:
        self.executor = executor

    def gpus(self) -> list[GpuInfo]:
        with self.executor._lock:
            return sorted(
                (g for n in self.executor.nodes.values() for g in n.gpus), key=lambda g: g.index
            )

    def nodes(self) -> list[str]:
        with self.executor._lock:
            return sorted(n.name for n in self.executor.nodes.values() if n.alive)

    def sample(self) -> list[GpuSample]:
        out = []
        with self.executor._lock:
            for node in self.executor.nodes.values():
                for gpu in node.gpus:
                    if not node.alive:
                        why = node.gone_reason or "the Ray cluster is unreachable"
                        error = f"offline: node {node.name} is gone ({why})"
                        out.append(GpuSample(gpu.index, mem_total=gpu.mem_total, error=error))
                    else:
                        out.append(
                            node.samples.get(gpu.index)
                            or GpuSample(gpu.index, mem_total=gpu.mem_total)
                        )
        return sorted(out, key=lambda s: s.index)

    def close(self) -> None:
        pass


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _make_log(path: Path) -> None:
    """Create the rank's (empty) log in ANT's log directory, so it can be read at once."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    os.close(fd)
