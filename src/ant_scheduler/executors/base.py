"""The Executor protocol and the values that cross it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ant_scheduler.core.errors import LaunchError

# Environment variables that mark every process a task starts (children inherit them), so the
# task's processes can be found even after they leave its process group or session.
TASK_ID_ENV = "ANT_TASK_ID"
SERVER_ID_ENV = "ANT_SERVER_ID"



@dataclass(frozen=True)
class LaunchRequest:
    task_id: str
    command: str  # the final shell command
    env: Mapping[str, str]  # task variables, added on top of ANT's own environment
    gpu_ids: tuple[int, ...]
    cwd: str
    log_path: Path  # stdout and stderr go straight here, never through ANT
    exit_path: Path  # the wrapper writes the exit code here when the command ends
    # Checked before the start, so a mistake fails the task with a reason, not a bare exit code.
    workdir: str | None = None  # ant_wd: must be an existing directory (~ expands; relative to cwd)
    conda: str | None = None  # the conda executable that ant_conda_* needs: must be found


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    start_time: float  # process create time: a reused pid is never mistaken for the task


@dataclass(frozen=True)
class FoundProcess:
    """A live process that carries this server's marker (see Executor.scan)."""

    task_id: str
    pid: int
    start_time: float
    session_leader: bool  # pid == its session id: the task's wrapper, unless it escaped
    cuda_visible_devices: str | None  # as the process was started with


@dataclass(frozen=True)
class ExitInfo:
    task_id: str
    exit_code: int | None  # None: ended, code unknown (adopted process without an exit file)
    killed: bool  # ANT killed it
    # Processes of the task still alive when its main process ended (it forked and left them
    # behind). While any is alive the task keeps its GPUs; the gone callback says when they are.
    lingering: int = 0


ExitCallback = Callable[[ExitInfo], None]
GoneCallback = Callable[[str], None]  # task_id: the last lingering process of the task is gone


class Executor(Protocol):
    """Runs tasks somewhere. All methods are called on the event loop's thread."""

    def set_exit_callback(self, callback: ExitCallback) -> None:
        """Called on the loop thread exactly once per started or adopted task when it ends."""

    def set_gone_callback(self, callback: GoneCallback) -> None:
        """Called on the loop thread once when the last lingering process of a task is gone
        (only for tasks reported with lingering > 0, or passed to watch_strays)."""

    def start(self, request: LaunchRequest) -> ProcessInfo:
        """Launch without waiting for the task (it runs on the loop thread: keep it fast).

        Raises LaunchError when the task cannot be started; nothing is left running then.
        """

    def adopt(self, task_id: str, pid: int, start_time: float, exit_path: Path) -> bool:
        """Watch a task left running by an earlier ANT; False if that process is gone."""

    def scan(self) -> list[FoundProcess]:
        """Every live (non-zombie) process carrying this server's marker, whoever its parent."""

    def watch_strays(self, task_id: str, pids: list[int]) -> int:
        """Track processes of a task whose main process is gone (found by scan after a
        restart); returns how many are alive. The gone callback fires when none is left."""

    def lingering(self, task_id: str) -> int:
        """Live processes of an ended task that are still tracked (0 when none)."""

    async def kill(self, task_id: str, grace_seconds: float) -> None:
        """End the task and every process it started (SIGTERM, SIGKILL after the grace), also
        when its main process has already ended and only lingering ones are left. A no-op for
        an unknown id. Returns once the exit (and the gone report, if due) has been made."""

    async def terminate_all(self, grace_seconds: float) -> None:
        """kill() every running task (for RUNNER_on_shutdown=terminate)."""

    def running_ids(self) -> set[str]: ...

    def pids(self) -> dict[str, int]:
        """task_id -> pid of the process ANT watches for it."""

    def close(self) -> None:
        """Stop watching. Never ends a task: it keeps running and can be adopted again."""


__all__ = [
    "SERVER_ID_ENV",
    "TASK_ID_ENV",
    "Executor",
    "ExitCallback",
    "ExitInfo",
    "FoundProcess",
    "GoneCallback",
    "LaunchError",
    "LaunchRequest",
    "ProcessInfo",
]
