"""The Executor seam: how the engine runs tasks somewhere, finds them again, and reads their output.

The engine never learns where or how a task runs. It hands over a LaunchRequest, stores the
opaque, JSON-serialisable *handle* the executor gives back, and after a restart gives the handles
back to `recover` to learn, for each task, whether it is still running, ended (with its exit
code), or lost. Output is read through the executor too (`output(handle, rank)`): nothing outside
executors/ opens a log or an exit file. Exits are reported through one callback on the loop thread.

Nodes: a task runs on `n_nodes` nodes (one rank per node, rank 0 first), on exactly the GPUs the
scheduler chose (`LaunchRequest.placement`: each rank's node, ANT's GPU ids and their indices on
that node, which is what CUDA_VISIBLE_DEVICES holds there). An executor that can be cut off from
where tasks run (a cluster) says so through `availability()` -- the scheduler starts nothing while
it is not None -- and calls the wake callback when that or its nodes change. A task that ended
where nobody saw it (its node died) is reported with `ExitInfo.lost`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ant_scheduler.core.errors import LaunchError

# Environment variables that mark every process a task starts (children inherit them), so the
# task's processes can be found even after they leave its process group or session.
TASK_ID_ENV = "ANT_TASK_ID"
SERVER_ID_ENV = "ANT_SERVER_ID"

Handle = dict[str, Any]  # JSON-serialisable; only the executor that made it reads it


@dataclass(frozen=True)
class RankPlacement:
    """Where one rank of a task runs: its node ("" = this machine) and GPUs."""

    node: str
    gpu_ids: tuple[int, ...]  # ANT's (global) GPU ids
    local_ids: tuple[int, ...]  # the same GPUs' indices on the node: its CUDA_VISIBLE_DEVICES


@dataclass(frozen=True)
class LaunchRequest:
    task_id: str
    command: str  # the final shell command
    env: Mapping[str, str]  # task variables, added on top of the executor's own environment
    gpu_ids: tuple[int, ...]  # every rank's GPUs, rank by rank (ANT's global ids)
    cwd: str
    session: str  # the server session's name (e.g. "20261125-154343"): groups its tasks' logs
    # Checked before the start, so a mistake fails the task with a reason, not a bare exit code.
    workdir: str | None = None  # ant_wd: must be an existing directory (~ expands; relative to cwd)
    conda: str | None = None  # the conda executable that ant_conda_* needs: must be found
    n_nodes: int = 1  # ranks: one per node
    # One per rank, rank 0 first (filled by the scheduler; empty only in tests of one executor).
    placement: tuple[RankPlacement, ...] = ()
    attempt: int = 1  # a retry's number: each attempt gets a log of its own
    # RUNNER_numa_affinity: the NUMA node(s) of its GPUs; an executor that can pins the task's
    # CPUs to theirs (and silently does not where the machine lacks them). Empty: no pinning.
    numa_nodes: tuple[int, ...] = ()


@dataclass(frozen=True)
class Running:
    """Recovered: the task still runs, and is watched again (its exit will be reported)."""

    handle: Handle


@dataclass(frozen=True)
class Ended:
    """Recovered: the task ended while ANT was down."""

    exit_code: int
    finished_at: float | None  # when, if the executor knows
    lingering: int = 0  # its processes still alive (watched: the gone callback follows)


@dataclass(frozen=True)
class Lost:
    """Recovered: no process of the task is running and how it ended is unknown."""

    reason: str
    lingering: int = 0


Reattached = Running | Ended | Lost


@dataclass(frozen=True)
class LeftBehind:
    """Live processes of a task that is not running (they are watched; gone callback at the end)."""

    count: int
    gpu_ids: tuple[int, ...]  # the GPUs they were given


@dataclass(frozen=True)
class Recovery:
    tasks: dict[str, Reattached]  # for every task the engine asked about
    left_behind: dict[str, LeftBehind] = field(default_factory=dict)  # of any other task


@dataclass(frozen=True)
class FoundProcess:
    """A live process that carries this server's marker (see Executor.scan)."""

    task_id: str
    pid: int
    start_time: float
    session_leader: bool  # pid == its session id: the task's wrapper, unless it escaped
    cuda_visible_devices: str | None  # as the process was started with
    node: str = ""  # where it runs ("" = this machine); CUDA_VISIBLE_DEVICES are that node's


@dataclass(frozen=True)
class ExitInfo:
    task_id: str
    exit_code: int | None  # None: ended, code unknown (adopted process without an exit file)
    killed: bool  # ANT killed it
    # Processes of the task still alive when its main process ended (it forked and left them
    # behind). While any is alive the task keeps its GPUs; the gone callback says when they are.
    lingering: int = 0
    # Set when the task ended where nobody saw how (its node left the cluster or died): why. The
    # task becomes `lost` (restorable) with this reason, and its GPUs are freed.
    lost: str | None = None
    # Set when the task could not start after all (an executor that learns it later, e.g. a
    # missing ant_wd on a cluster node): why. The task fails with this reason.
    reason: str | None = None


ExitCallback = Callable[[ExitInfo], None]
GoneCallback = Callable[[str], None]  # task_id: the last lingering process of the task is gone
WakeCallback = Callable[[], None]  # availability() or the nodes changed: plan again


class Follower(Protocol):
    """Reads what a task wrote since the last call."""

    @property
    def offset(self) -> int:
        """Bytes consumed so far; a reader resuming from here misses and repeats nothing."""

    def read_new_text(self, max_bytes: int = 1 << 20, *, final: bool = False) -> str: ...


class TaskOutput(Protocol):
    """One task's output (stdout and stderr together), as its executor keeps it."""

    def tail_bytes(self, max_bytes: int) -> bytes:
        """The last max_bytes bytes (b"" when there is nothing yet)."""

    def last_lines(self, n: int) -> tuple[str, int]:
        """The last n lines, and the size in bytes when read (where a follower may resume)."""

    def follower(self, offset: int | None = None) -> Follower:
        """Reads what is written from `offset` on (None: from the current end)."""

    def read_range(self, offset: int, max_bytes: int) -> tuple[bytes, int]:
        """Up to max_bytes from byte `offset` on (b"" at or past the end), and the size in bytes
        when read. Called from worker threads (the log viewer's reads and searches)."""

    def file(self) -> Path | None:
        """A local file holding all of it (for a download), if there is one."""


class Executor(Protocol):
    """Runs tasks somewhere. All methods are called on the event loop's thread."""

    name: str

    def set_exit_callback(self, callback: ExitCallback) -> None:
        """Called on the loop thread exactly once per started or adopted task when it ends."""

    def set_gone_callback(self, callback: GoneCallback) -> None:
        """Called on the loop thread once when the last lingering process of a task is gone
        (for tasks reported with lingering > 0, and those recover() says are left behind)."""

    def set_wake_callback(self, callback: WakeCallback) -> None:
        """Called on the loop thread when availability() or the set of nodes changed: the
        scheduler plans again and says what changed (health). Executors whose availability
        never changes never call it."""

    def availability(self) -> str | None:
        """None when tasks can be started now; else why not, in words (e.g. "Ray cluster at
        127.0.0.1:6379 unreachable since 17:32:01"). While it is not None nothing is started,
        and queued tasks give this as their reason. Cheap: called on every scheduling pass."""

    def prepare(self, request: LaunchRequest) -> Handle:
        """The handle the task will have, recorded before the start so that a crash between
        the record and the start can be settled by recover(). Does not start anything.

        Raises LaunchError when the task cannot be started (e.g. an impossible log path).
        """

    def start(self, request: LaunchRequest, handle: Handle) -> Handle:
        """Launch without waiting for the task (it runs on the loop thread: keep it fast) and
        return the handle to keep. Raises LaunchError; nothing is left running then."""

    def describe(self, handle: Handle) -> tuple[int | None, str | None]:
        """(pid, log location) to show users, when the executor has them."""

    def settle(self, handle: Handle) -> Handle:
        """The handle of a running task as it should be recorded: start() may leave out what
        is not needed at once (the local executor's process start time) to stay fast. Called on
        the loop thread before the handle of a started task is written (with the next batch)."""

    def recover(self, running: Mapping[str, Handle | None]) -> Recovery:
        """After a restart: what became of each task recorded as running (None: recorded as
        starting, handle never completed), and which other tasks left processes behind."""

    def scan(self) -> list[FoundProcess]:
        """Every live process carrying this server's marker, whoever its parent (self-check)."""

    def lingering(self, task_id: str) -> int:
        """Live processes of an ended task that are still tracked (0 when none)."""

    def output(self, handle: Handle, rank: int = 0) -> TaskOutput:
        """The output of one rank (0: the first node) of the task with this handle (running or
        long finished). Raises InvalidQuery for a rank it has no output of."""

    def rename_files(self, handle: Handle, old_id: str, new_id: str) -> Handle:
        """Give the files of a task that is not running (its log, exit file) the new id's names
        and return the handle naming them. The old names stay until `drop_names` (called once
        the rename is stored; with the new handle and id instead if storing it failed). Raises
        OSError (having undone its part) when a file cannot be given its new name."""

    def drop_names(self, handle: Handle, task_id: str) -> None:
        """Remove the names this handle gives the task's files (see rename_files)."""

    async def kill(self, task_id: str, grace_seconds: float) -> None:
        """End the task and every process it started (SIGTERM, SIGKILL after the grace), also
        when its main process has already ended and only lingering ones are left. A no-op for
        an unknown id. Returns once the exit (and the gone report, if due) has been made."""

    async def terminate_all(self, grace_seconds: float) -> None:
        """kill() every running task (for RUNNER_on_shutdown=terminate)."""

    def running_ids(self) -> set[str]: ...

    def close(self) -> None:
        """Stop watching. Never ends a task: it keeps running and can be recovered again."""


__all__ = [
    "SERVER_ID_ENV",
    "TASK_ID_ENV",
    "Ended",
    "Executor",
    "ExitCallback",
    "ExitInfo",
    "Follower",
    "FoundProcess",
    "GoneCallback",
    "Handle",
    "LaunchError",
    "LaunchRequest",
    "LeftBehind",
    "Lost",
    "RankPlacement",
    "Reattached",
    "Recovery",
    "Running",
    "TaskOutput",
    "WakeCallback",
]
