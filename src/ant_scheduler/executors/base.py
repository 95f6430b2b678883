"""The Executor protocol and the values that cross it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ant_scheduler.core.errors import AntError


class LaunchError(AntError):
    """The task's process could not be started (missing directory, unwritable log, ...)."""

    code = "launch_failed"
    status = 500


@dataclass(frozen=True)
class LaunchRequest:
    task_id: str
    command: str  # the final shell command
    env: Mapping[str, str]  # task variables, added on top of ANT's own environment
    gpu_ids: tuple[int, ...]
    cwd: str
    log_path: Path  # stdout and stderr go straight here, never through ANT
    exit_path: Path  # the wrapper writes the exit code here when the command ends


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    start_time: float  # process create time: a reused pid is never mistaken for the task


@dataclass(frozen=True)
class ExitInfo:
    task_id: str
    exit_code: int | None  # None: ended, code unknown (adopted process without an exit file)
    killed: bool  # ANT killed it


ExitCallback = Callable[[ExitInfo], None]


class Executor(Protocol):
    """Runs tasks somewhere. All methods are called on the event loop's thread."""

    def set_exit_callback(self, callback: ExitCallback) -> None:
        """Called on the loop thread exactly once per started or adopted task when it ends."""

    def start(self, request: LaunchRequest) -> ProcessInfo:
        """Launch without waiting for the task (it runs on the loop thread: keep it fast).

        Raises LaunchError when the task cannot be started.
        """

    def adopt(self, task_id: str, pid: int, start_time: float, exit_path: Path) -> bool:
        """Watch a task left running by an earlier ANT; False if that process is gone."""

    async def kill(self, task_id: str, grace_seconds: float) -> None:
        """End the task and everything it started; a no-op for an unknown or finished id."""

    async def terminate_all(self, grace_seconds: float) -> None:
        """kill() every running task (for RUNNER_on_shutdown=terminate)."""

    def running_ids(self) -> set[str]: ...

    def pids(self) -> dict[str, int]:
        """task_id -> pid of the process ANT watches for it."""

    def close(self) -> None:
        """Stop watching. Never ends a task: it keeps running and can be adopted again."""
