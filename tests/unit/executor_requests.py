"""What the local executor's tests launch: a LaunchRequest plus the log and exit paths its handle
names (the executor's start() takes them from the handle, so a test can point them anywhere)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ant_scheduler.executors.base import LaunchRequest


@dataclass(frozen=True)
class Req:
    task_id: str
    command: str
    env: Mapping[str, str]
    gpu_ids: tuple[int, ...]
    cwd: str
    log_path: Path
    exit_path: Path
    workdir: str | None = None
    conda: str | None = None


@dataclass(frozen=True)
class Started:
    pid: int
    start_time: float


def launch(executor: Any, req: Req) -> Started:
    fields = {
        f.name: getattr(req, f.name)
        for f in dataclasses.fields(LaunchRequest)
        if f.name != "session"
    }
    request = LaunchRequest(**fields, session="test")
    handle = executor.start(request, {"log": str(req.log_path), "exit": str(req.exit_path)})
    return Started(handle["pid"], handle["start_time"])
