"""Who is using a GPU: each GPU process is matched to the ANT task whose process tree holds it,
or reported as external with its pid, user and command (read from /proc through psutil)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psutil

from ant_scheduler.monitor.base import GpuProcess


@dataclass(frozen=True)
class ProcessOwner:
    pid: int
    used_memory: int
    task_id: str | None  # None: not ANT's
    user: str | None = None
    command: str | None = None

    def describe(self) -> str:
        who = f"pid {self.pid}"
        if self.user:
            who += f" {self.user}"
        if self.command:
            who += f": {self.command[:80]}"
        return who


def _task_of(pid: int, task_pids: Mapping[int, str]) -> str | None:
    """The task whose wrapper leads this process's session or is one of its ancestors."""
    try:
        sid = os.getsid(pid)
    except OSError:
        sid = -1
    if sid in task_pids:
        return task_pids[sid]
    try:
        proc = psutil.Process(pid)
        for candidate in [proc, *proc.parents()]:
            if candidate.pid in task_pids:
                return task_pids[candidate.pid]
    except psutil.Error:
        pass
    return None


def attribute(processes: Sequence[GpuProcess], task_pids: Mapping[int, str]) -> list[ProcessOwner]:
    out = []
    for p in processes:
        task_id = _task_of(p.pid, task_pids)
        if task_id is not None:
            out.append(ProcessOwner(p.pid, p.used_memory, task_id))
            continue
        user = command = None
        try:
            proc = psutil.Process(p.pid)
            user = proc.username()
            command = " ".join(proc.cmdline()) or proc.name()
        except psutil.Error:
            pass  # gone, or another container's pid: report what NVML said
        out.append(ProcessOwner(p.pid, p.used_memory, None, user, command))
    return out
