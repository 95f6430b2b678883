"""What is really running, read from /proc (not from ANT): the processes each task started, on
which GPUs, and the check every reliability scenario ends with."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


@dataclass(frozen=True)
class TaskProcess:
    pid: int
    task_id: str
    server_id: str
    gpus: tuple[int, ...]


def _environ(pid: int) -> dict[str, str] | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return None
    if state == b"Z":  # a zombie runs nothing
        return None
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key in (b"ANT_TASK_ID", b"ANT_SERVER_ID", b"CUDA_VISIBLE_DEVICES"):
            env[key.decode()] = value.decode(errors="replace")
    return env


def task_processes() -> list[TaskProcess]:
    """Every live process that carries an ANT task marker, whoever its parent is."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        env = _environ(int(name))
        if not env or "ANT_TASK_ID" not in env:
            continue
        gpus = tuple(int(g) for g in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.isdigit())
        found.append(TaskProcess(int(name), env["ANT_TASK_ID"], env.get("ANT_SERVER_ID", ""), gpus))
    return found


def server_id(state_dir: Path) -> str:
    """The marker a server's task processes carry (kept in its database)."""
    db = sqlite3.connect(state_dir / "ant.db")
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'server_id'").fetchone()
    finally:
        db.close()
    return str(row[0]) if row else ""


def processes_of(server: str, task_id: str | None = None) -> list[int]:
    """Live processes of one server (of one of its tasks)."""
    return [
        p.pid
        for p in task_processes()
        if p.server_id == server and (task_id is None or p.task_id == task_id)
    ]


def gpu_sharing(server: str) -> dict[int, set[str]]:
    """GPUs on which live processes of more than one task run (should always be empty)."""
    owners: dict[int, set[str]] = defaultdict(set)
    for proc in task_processes():
        if proc.server_id == server:
            for gpu in proc.gpus:
                owners[gpu].add(proc.task_id)
    return {gpu: tasks for gpu, tasks in owners.items() if len(tasks) > 1}


def check_reality(c: httpx.Client, state_dir: Path) -> dict[str, Any]:
    """The end of every scenario: ANT's self-check finds nothing, and no GPU is shared."""
    report: dict[str, Any] = c.get("/api/v1/doctor").json()
    assert report.get("ok"), report
    sharing = gpu_sharing(server_id(state_dir))
    assert not sharing, f"GPUs shared by live processes of several tasks: {sharing}"
    return report


def kill_processes_of(state_dir: Path) -> None:
    """Test hygiene: nothing a test's server started may outlive the test."""
    for pid in processes_of(server_id(state_dir)):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
