"""Helpers of the executor and store tests. What the local executor's tests launch: a
LaunchRequest plus the log and exit paths its handle names (start() takes them from the handle,
so a test can point them anywhere); a stand-in for an ANT that crashes; filling a disk."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
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
        if f.name != "session" and hasattr(req, f.name)  # the others keep their defaults
    }
    request = LaunchRequest(**fields, session="test")
    handle = executor.start(request, {"log": str(req.log_path), "exit": str(req.exit_path)})
    handle = executor.settle(handle)  # as the engine does before recording it
    return Started(handle["pid"], handle["start_time"])


# Plays ANT: starts one task, says what it started, then waits to be SIGKILLed.
FAKE_ANT = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pathlib import Path
    from ant_scheduler.executors.base import LaunchRequest
    from ant_scheduler.executors.local import LocalExecutor

    async def main():
        log = Path(sys.argv[1])
        executor = LocalExecutor(server_id=sys.argv[3])
        info = executor.settle(executor.start(
            LaunchRequest("orphan", sys.argv[2], {}, (), str(log.parent), "s"),
            {"log": str(log), "exit": str(log.with_suffix(".exit"))}))
        print(json.dumps([info["pid"], info["start_time"]]), flush=True)
        time.sleep(100)

    asyncio.run(main())
    """
)


def start_orphan(tmp_path: Path, command: str, server_id: str) -> tuple[int, float, Path]:
    """Start a task from another process, then kill -9 that process, as if ANT crashed."""
    log = tmp_path / "orphan.log"
    ant = subprocess.Popen(
        [sys.executable, "-c", FAKE_ANT, str(log), command, server_id],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert ant.stdout is not None
    pid, start_time = json.loads(ant.stdout.readline())
    ant.kill()
    ant.wait()
    ant.stdout.close()
    return pid, start_time, log.with_suffix(".exit")


def fill(directory: Path) -> Path:
    """Fill the file system under directory until nothing more fits (unbuffered writes: a
    buffered file would fail again when closed)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler
