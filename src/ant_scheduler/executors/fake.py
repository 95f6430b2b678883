"""An executor that runs nothing: tests (and demos) decide when its tasks end and what they print.

It keeps the Executor contract exactly — exits and gone reports on the loop thread, once each;
handles that survive an engine restart — so the engine's behaviour can be tested in milliseconds
and in any interleaving: a task ending in the same instant it is deleted, processes left behind,
a launch that fails, ANT restarting while tasks run. One FakeExecutor stands for the machine:
give the same one to the next Engine to test a restart.

It stands for a cluster too: it keeps each task's placement (`placement(task_id)`) and one output
per rank, can lose the tasks of a node that leaves (`node_left`: their exits say `lost`), and can
be cut off (`set_available`), waking the scheduler each time as a cluster executor would.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ant_scheduler.core.errors import InvalidQuery
from ant_scheduler.executors.base import (
    Ended,
    ExitCallback,
    ExitInfo,
    FoundProcess,
    GoneCallback,
    Handle,
    LaunchError,
    LaunchRequest,
    LeftBehind,
    Lost,
    RankPlacement,
    Reattached,
    Recovery,
    Running,
    WakeCallback,
)


@dataclass
class FakeProcess:
    request: LaunchRequest
    pid: int
    strays: list[int] = field(default_factory=list)  # pids left behind once the main one ends
    ended: bool = False
    exit_code: int | None = None
    watched: bool = True  # False after close(): it runs on, nobody is told when it ends
    output: bytearray = field(default_factory=bytearray)  # rank 0's
    lost: str | None = None  # it ended where nobody saw how (its node left): why
    more_output: list[bytearray] = field(default_factory=list)  # ranks 1, 2, ... of a gang

    def rank_output(self, rank: int) -> bytearray:
        if rank == 0:
            return self.output
        while len(self.more_output) < self.request.n_nodes - 1:
            self.more_output.append(bytearray())
        if not 0 < rank < self.request.n_nodes:
            raise InvalidQuery(
                f"rank: task {self.request.task_id!r} has {self.request.n_nodes} rank(s), "
                f"not rank {rank}"
            )
        return self.more_output[rank - 1]

    def nodes(self) -> list[str]:
        return [rank.node for rank in self.request.placement] or [""]


class FakeOutput:
    """TaskOutput over what a fake task "printed" (FakeExecutor.write)."""

    def __init__(self, data: bytearray) -> None:
        self._data = data

    def tail_bytes(self, max_bytes: int) -> bytes:
        return bytes(self._data[-max_bytes:]) if max_bytes > 0 else b""

    def last_lines(self, n: int) -> tuple[str, int]:
        text = bytes(self._data).decode("utf-8", errors="replace")
        lines = text.splitlines(keepends=True)[-n:] if n > 0 else []
        return "".join(lines), len(self._data)

    def follower(self, offset: int | None = None) -> FakeFollower:
        return FakeFollower(self._data, len(self._data) if offset is None else offset)

    def read_range(self, offset: int, max_bytes: int) -> tuple[bytes, int]:
        size = len(self._data)
        return bytes(self._data[offset : offset + max(0, max_bytes)]), size

    def file(self) -> Path | None:
        return None


class FakeFollower:
    def __init__(self, data: bytearray, offset: int) -> None:
        self._data = data
        self._offset = offset

    @property
    def offset(self) -> int:
        return self._offset

    def read_new_text(self, max_bytes: int = 1 << 20, *, final: bool = False) -> str:
        chunk = bytes(self._data[self._offset : self._offset + max_bytes])
        self._offset += len(chunk)
        return chunk.decode("utf-8", errors="replace")


class FakeExecutor:
    name = "fake"

    def __init__(self) -> None:
        self.procs: dict[str, FakeProcess] = {}
        self.started: list[str] = []  # every task id start() was asked for, in order
        self.fail_next: dict[str, str] = {}  # task id -> LaunchError message for its start
        self.crash_next: dict[str, Exception] = {}  # task id -> any exception for its start
        self._pids = itertools.count(10_000)
        self._on_exit: ExitCallback = lambda info: None
        self._on_gone: GoneCallback = lambda task_id: None
        self._on_wake: WakeCallback = lambda: None
        self._killed: set[str] = set()
        self.unavailable: str | None = None  # what availability() says
        self.rename_error: OSError | None = None  # rename_files raises it (tests)

    # ------------------------------------------------------------------ the contract

    def set_exit_callback(self, callback: ExitCallback) -> None:
        self._on_exit = callback

    def set_gone_callback(self, callback: GoneCallback) -> None:
        self._on_gone = callback

    def set_wake_callback(self, callback: WakeCallback) -> None:
        self._on_wake = callback

    def availability(self) -> str | None:
        return self.unavailable

    def prepare(self, request: LaunchRequest) -> Handle:
        return {"fake": request.task_id, "attempt": request.attempt}

    def start(self, request: LaunchRequest, handle: Handle) -> Handle:
        self.started.append(request.task_id)
        if request.task_id in self.crash_next:
            raise self.crash_next.pop(request.task_id)
        if request.task_id in self.fail_next:
            raise LaunchError(self.fail_next.pop(request.task_id))
        current = self.procs.get(request.task_id)
        if current is not None and (not current.ended or current.strays):
            raise LaunchError(f"task {request.task_id!r} is already running")
        proc = FakeProcess(request, next(self._pids))
        self.procs[request.task_id] = proc
        self._killed.discard(request.task_id)
        return {**handle, "pid": proc.pid}

    def describe(self, handle: Handle) -> tuple[int | None, str | None]:
        pid = handle.get("pid")
        return (pid if isinstance(pid, int) else None), None

    def settle(self, handle: Handle) -> Handle:
        return handle

    def recover(self, running: Mapping[str, Handle | None]) -> Recovery:
        results: dict[str, Reattached] = {}
        for task_id, handle in running.items():
            proc = self.procs.get(task_id)
            started = "pid" in (handle or {})  # else recorded as starting: prepared only
            if proc is None or (started and (handle or {})["pid"] != proc.pid):
                results[task_id] = Lost("no process of it was found")
            elif not proc.ended:
                proc.watched = True
                results[task_id] = Running({"fake": task_id, "pid": proc.pid})
            elif proc.exit_code is not None:
                results[task_id] = Ended(proc.exit_code, None, len(proc.strays))
            elif proc.lost is not None:
                results[task_id] = Lost(proc.lost)
            elif started:
                results[task_id] = Lost("it vanished while ANT was down", len(proc.strays))
            else:
                results[task_id] = Lost(
                    "ANT stopped while starting it and no process of it was found"
                )
        left = {
            task_id: LeftBehind(len(proc.strays), proc.request.gpu_ids)
            for task_id, proc in self.procs.items()
            if task_id not in running and proc.ended and proc.strays
        }
        return Recovery(results, left)

    def scan(self) -> list[FoundProcess]:
        found = []
        for task_id, proc in self.procs.items():
            ranks = [(r.node, r.local_ids) for r in proc.request.placement]
            for node, ids in ranks or [("", proc.request.gpu_ids)]:
                cuda = ",".join(map(str, ids))
                if not proc.ended:
                    found.append(FoundProcess(task_id, proc.pid, 1000.0, True, cuda, node))
                found += [FoundProcess(task_id, p, 1000.0, False, cuda, node) for p in proc.strays]
        return found

    def lingering(self, task_id: str) -> int:
        proc = self.procs.get(task_id)
        return len(proc.strays) if proc is not None and proc.ended else 0

    def rename_files(self, handle: Handle, old_id: str, new_id: str) -> Handle:
        if self.rename_error is not None:
            raise self.rename_error
        proc = self.procs.get(str(handle.get("fake")))
        if proc is not None:
            self.procs[new_id] = proc
        return {**handle, "fake": new_id}

    def drop_names(self, handle: Handle, task_id: str) -> None:
        if handle.get("fake") == task_id:
            self.procs.pop(task_id, None)

    def output(self, handle: Handle, rank: int = 0) -> FakeOutput:
        proc = self.procs.get(str(handle.get("fake")))
        if proc is None:
            if rank != 0:
                raise InvalidQuery(f"rank: no output of rank {rank}")
            return FakeOutput(bytearray())
        return FakeOutput(proc.rank_output(rank))

    async def kill(self, task_id: str, grace_seconds: float) -> None:
        proc = self.procs.get(task_id)
        if proc is None:
            return
        if not proc.ended:
            self._killed.add(task_id)
            proc.strays.clear()
            self.finish(task_id, 128 + 15)
        elif proc.strays:
            self.end_strays(task_id)
        await asyncio.sleep(0)

    async def terminate_all(self, grace_seconds: float) -> None:
        for task_id in self.running_ids():
            await self.kill(task_id, grace_seconds)

    def running_ids(self) -> set[str]:
        return {t for t, p in self.procs.items() if not p.ended and p.watched}

    def close(self) -> None:
        """Stop watching, as ANT does when it stops: the tasks run on."""
        for proc in self.procs.values():
            proc.watched = False

    # ------------------------------------------------------------------ driving it (tests)

    def write(self, task_id: str, text: str, rank: int = 0) -> None:
        """The task (on the node of this rank) prints `text`."""
        self.procs[task_id].rank_output(rank).extend(text.encode())

    def placement(self, task_id: str) -> tuple[RankPlacement, ...]:
        """Where the scheduler asked the task to run, rank by rank."""
        return self.procs[task_id].request.placement

    def lose(self, task_id: str, reason: str) -> None:
        """The task ends where nobody sees how (its node died): reported as lost."""
        proc = self.procs[task_id]
        proc.ended = True
        proc.lost = reason
        proc.strays = []
        if proc.watched:
            self._on_exit(ExitInfo(task_id, None, task_id in self._killed, 0, lost=reason))

    def node_left(self, node: str, reason: str | None = None) -> list[str]:
        """A node leaves the cluster: every running task with a rank on it is lost, then the
        scheduler is woken (its GPU backend should no longer list the node). Returns the ids."""
        why = reason or f"node {node} left the cluster"
        gone = [t for t, p in self.procs.items() if not p.ended and node in p.nodes()]
        for task_id in gone:
            self.lose(task_id, why)
        self._on_wake()
        return gone

    def set_available(self, why_not: str | None) -> None:
        """Cut off (why not, in words) or back (None); wakes the scheduler."""
        self.unavailable = why_not
        self._on_wake()

    def wake(self) -> None:
        """Say that the nodes changed (e.g. one joined)."""
        self._on_wake()

    def finish(self, task_id: str, exit_code: int | None = 0, *, leave: int = 0) -> None:
        """The task's main process ends now, leaving `leave` processes behind."""
        proc = self.procs[task_id]
        proc.ended = True
        proc.exit_code = exit_code
        proc.strays = [next(self._pids) for _ in range(leave)]
        if proc.watched:
            killed = task_id in self._killed
            self._on_exit(ExitInfo(task_id, exit_code, killed, len(proc.strays)))

    def end_strays(self, task_id: str) -> None:
        """The processes the task left behind end now."""
        proc = self.procs[task_id]
        if proc.strays:
            proc.strays.clear()
            self._on_gone(task_id)
