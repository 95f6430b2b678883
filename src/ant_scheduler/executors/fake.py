"""An executor that runs nothing: tests (and demos) decide when its tasks end.

It keeps the Executor contract exactly — exits and gone reports on the loop thread, once each —
so the engine's behaviour can be tested in milliseconds and in any interleaving: a task ending
in the same instant it is deleted, processes left behind, a launch that fails.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from ant_scheduler.executors.base import (
    ExitCallback,
    ExitInfo,
    FoundProcess,
    GoneCallback,
    LaunchError,
    LaunchRequest,
    ProcessInfo,
)


@dataclass
class FakeProcess:
    request: LaunchRequest | None
    pid: int
    start_time: float
    strays: list[int] = field(default_factory=list)  # pids left behind once the main one ends
    ended: bool = False


class FakeExecutor:
    def __init__(self) -> None:
        self.procs: dict[str, FakeProcess] = {}
        self.started: list[str] = []  # every task id start() was asked for, in order
        self.fail_next: dict[str, str] = {}  # task id -> LaunchError message for its start
        self.crash_next: dict[str, Exception] = {}  # task id -> any exception for its start
        self.kill_ends = True  # False: kill() leaves the task running (a stuck process)
        self._pids = itertools.count(10_000)
        self._on_exit: ExitCallback = lambda info: None
        self._on_gone: GoneCallback = lambda task_id: None
        self._killed: set[str] = set()

    # ------------------------------------------------------------------ the contract

    def set_exit_callback(self, callback: ExitCallback) -> None:
        self._on_exit = callback

    def set_gone_callback(self, callback: GoneCallback) -> None:
        self._on_gone = callback

    def start(self, request: LaunchRequest) -> ProcessInfo:
        self.started.append(request.task_id)
        if request.task_id in self.crash_next:
            raise self.crash_next.pop(request.task_id)
        if request.task_id in self.fail_next:
            raise LaunchError(self.fail_next.pop(request.task_id))
        if request.task_id in self.procs and not self.procs[request.task_id].ended:
            raise LaunchError(f"task {request.task_id!r} is already running")
        proc = FakeProcess(request, next(self._pids), 1000.0)
        self.procs[request.task_id] = proc
        return ProcessInfo(proc.pid, proc.start_time)

    def adopt(self, task_id: str, pid: int, start_time: float, exit_path: Path) -> bool:
        proc = self.procs.get(task_id)
        return proc is not None and not proc.ended and proc.pid == pid

    def scan(self) -> list[FoundProcess]:
        found = []
        for task_id, proc in self.procs.items():
            gpus = proc.request.gpu_ids if proc.request else ()
            cuda = ",".join(map(str, gpus))
            if not proc.ended:
                found.append(FoundProcess(task_id, proc.pid, proc.start_time, True, cuda))
            found += [FoundProcess(task_id, p, proc.start_time, False, cuda) for p in proc.strays]
        return found

    def watch_strays(self, task_id: str, pids: list[int]) -> int:
        proc = self.procs.get(task_id)
        return 0 if proc is None else len([p for p in proc.strays if p in pids])

    def lingering(self, task_id: str) -> int:
        proc = self.procs.get(task_id)
        return len(proc.strays) if proc is not None and proc.ended else 0

    async def kill(self, task_id: str, grace_seconds: float) -> None:
        proc = self.procs.get(task_id)
        if proc is None or not self.kill_ends:
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
        return {t for t, p in self.procs.items() if not p.ended}

    def pids(self) -> dict[str, int]:
        return {t: p.pid for t, p in self.procs.items() if not p.ended}

    def close(self) -> None:
        self._on_exit = lambda info: None
        self._on_gone = lambda task_id: None

    # ------------------------------------------------------------------ driving it (tests)

    def finish(self, task_id: str, exit_code: int | None = 0, *, leave: int = 0) -> None:
        """The task's main process ends now, leaving `leave` processes behind."""
        proc = self.procs[task_id]
        proc.ended = True
        proc.strays = [next(self._pids) for _ in range(leave)]
        killed = task_id in self._killed
        self._on_exit(ExitInfo(task_id, exit_code, killed, len(proc.strays)))

    def end_strays(self, task_id: str) -> None:
        """The processes the task left behind end now."""
        proc = self.procs[task_id]
        if proc.strays:
            proc.strays.clear()
            self._on_gone(task_id)
