"""Tasks as local process groups that outlive ANT, watched through pidfds.

Each task runs under a small bash wrapper in its own session (so its whole process tree can be
signalled as a group, and ANT's own death does not take it down). The wrapper runs the command in
a child, then writes the exit code next to the log: that is how a task that ends while ANT is
down still reports its real exit code, and how a re-adopted task (not ANT's child, so it cannot be
waited for) reports it at all.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from ant_scheduler.executors.base import (
    ExitCallback,
    ExitInfo,
    FoundProcess,
    GoneCallback,
    LaunchError,
    LaunchRequest,
    ProcessInfo,
)

# $1 = command, $2 = exit file. `trap :` (a handler, not "ignore", which the task would inherit)
# lets the wrapper survive the group SIGTERM long enough to record the command's exit code. The
# command runs in a subshell (a fork, no second exec; traps reset to default there), with the
# positional parameters cleared so it sees none of the wrapper's. The command travels as an
# argument, never as an exported variable, so it does not show up in the task's environment.
# The exit file is written by one printf (a single write of a few bytes) instead of tmp + mv: no
# reader looks at it before the wrapper has ended, and an extra exec per task is not free.
WRAPPER = """trap : TERM INT HUP
__ant_cmd=$1 __ant_exit=$2
shift 2
( eval "$__ant_cmd" )
__ant_rc=$?
printf '%d\\n' "$__ant_rc" > "$__ant_exit"
exit "$__ant_rc"
"""
START_TIME_TOLERANCE = 0.05  # seconds; create times come in clock ticks (10 ms)
MIN_FREE_BYTES = 64 * 1024  # below this a task's log (and exit code) could not be written
POLL_SECONDS = 0.2  # only without pidfd support
GROUP_POLL_SECONDS = 0.05
AFTER_SIGKILL_SECONDS = 5.0  # a process stuck in the kernel (D state) may take this long or more


def read_exit_file(path: Path) -> int | None:
    """The exit code a wrapper recorded, or None if there is none (or it is garbage)."""
    try:
        with open(path, "rb") as f:
            text = f.read(16)
        code = int(text.decode("ascii").strip())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return code if 0 <= code <= 255 else None


def process_start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _is_same_process(pid: int, start_time: float) -> bool:
    """Alive (not a zombie) and created when we think: a reused pid is never taken for the task."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            return abs(proc.create_time() - start_time) <= START_TIME_TOLERANCE
    except psutil.Error:
        return False


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running.

    Zombies do not count: where pid 1 never reaps orphans (many containers) they stay forever.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):
            continue
    return False


def _signal_group(pgid: int, sig: int) -> None:
    # killpg reaches every member even when the leader (the wrapper) is already gone.
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _open_pidfd(pid: int) -> int | None:
    """A pidfd for `pid`, or None (no such process, no pidfd support, out of fds): poll then."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        fd: int = pidfd_open(pid)
    except OSError:
        return None
    return fd


@dataclass(eq=False)
class _Watched:
    task_id: str
    pid: int  # the wrapper; it leads its own session, so this is also the process group id
    start_time: float
    exit_path: Path
    popen: subprocess.Popen[bytes] | None  # None for an adopted process (not our child)
    pidfd: int | None = None
    kill_requested: bool = False
    # While a kill runs, it (not the end of the wrapper) reports the exit, once the whole group
    # is gone: the engine frees the task's GPUs on that report.
    report_deferred: bool = False
    ended: bool = False
    exit_code: int | None = None
    wrapper_gone: asyncio.Event = field(default_factory=asyncio.Event)
    killer: asyncio.Task[None] | None = None


class LocalExecutor:
    """Start, watch, kill and re-adopt tasks on this machine.

    Every method must be called on the event loop's thread; the exit callback runs there too,
    exactly once per started or adopted task (never after close()).
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop | None = None, *, use_pidfd: bool = True
    ) -> None:
        self._loop = loop
        self._use_pidfd = use_pidfd  # False forces the polling fallback (tests use it)
        self._procs: dict[str, _Watched] = {}
        self._callback: ExitCallback = lambda info: None
        self._poller: asyncio.Task[None] | None = None

    def set_exit_callback(self, callback: ExitCallback) -> None:
        self._callback = callback

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    # ------------------------------------------------------------------ start / adopt

    def start(self, request: LaunchRequest) -> ProcessInfo:
        loop = self._get_loop()
        if request.task_id in self._procs:
            raise LaunchError(f"task {request.task_id!r} is already running")
        env = dict(os.environ)
        env.update(request.env)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in request.gpu_ids)
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        env["ANT_TASK_ID"] = request.task_id
        env["PYTHONUNBUFFERED"] = "1"
        try:
            request.log_path.parent.mkdir(parents=True, exist_ok=True)
            disk = os.statvfs(request.log_path.parent)
            if disk.f_bavail * disk.f_frsize < MIN_FREE_BYTES:
                raise LaunchError(
                    f"no space left for the log in {request.log_path.parent} "
                    f"({disk.f_bavail * disk.f_frsize} bytes free)"
                )
            # A code left by an earlier run under the same id must not be taken for this one's.
            request.exit_path.unlink(missing_ok=True)
            log_fd = os.open(request.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise LaunchError(f"cannot open log file {request.log_path}: {exc.strerror}") from None
        try:
            popen = subprocess.Popen(
                ["bash", "-c", WRAPPER, "ant-task", request.command, str(request.exit_path)],
                cwd=request.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            if exc.filename == request.cwd:
                raise LaunchError(
                    f"cannot start task in directory {request.cwd}: {exc.strerror}"
                ) from None
            raise LaunchError(f"cannot start task (bash): {exc.strerror}") from None
        except ValueError as exc:  # a NUL byte in the command, a variable or the directory
            raise LaunchError(f"cannot start task: {exc}") from None
        finally:
            os.close(log_fd)
        start_time = process_start_time(popen.pid)
        watched = _Watched(
            request.task_id,
            popen.pid,
            time.time() if start_time is None else start_time,
            request.exit_path,
            popen,
        )
        self._procs[request.task_id] = watched
        self._watch(watched, _open_pidfd(popen.pid) if self._use_pidfd else None, loop)
        return ProcessInfo(watched.pid, watched.start_time)

    def adopt(self, task_id: str, pid: int, start_time: float, exit_path: Path) -> bool:
        """Watch a task started before ANT restarted, if it is that very process still."""
        loop = self._get_loop()
        current = self._procs.get(task_id)
        if current is not None:
            return current.pid == pid and abs(current.start_time - start_time) <= (
                START_TIME_TOLERANCE
            )
        # Opened before the identity check: the fd then pins the process that we check, so the
        # pid cannot be recycled between the check and the watch.
        pidfd = _open_pidfd(pid) if self._use_pidfd else None
        if not _is_same_process(pid, start_time):
            if pidfd is not None:
                os.close(pidfd)
            return False
        watched = _Watched(task_id, pid, start_time, exit_path, None)
        self._procs[task_id] = watched
        self._watch(watched, pidfd, loop)
        return True

    # ------------------------------------------------------------------ watching

    def _watch(self, watched: _Watched, pidfd: int | None, loop: asyncio.AbstractEventLoop) -> None:
        if pidfd is None:
            self._ensure_poller(loop)
            return
        watched.pidfd = pidfd
        loop.add_reader(pidfd, self._on_wrapper_end, watched)

    def _unwatch(self, watched: _Watched) -> None:
        if watched.pidfd is None:
            return
        try:
            self._get_loop().remove_reader(watched.pidfd)
        except RuntimeError:  # the loop is already closed
            pass
        os.close(watched.pidfd)
        watched.pidfd = None

    def _ensure_poller(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._poller is None or self._poller.done():
            self._poller = loop.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            polled = [w for w in self._procs.values() if w.pidfd is None and not w.ended]
            if not polled:
                return
            for watched in polled:
                if self._has_ended(watched):
                    self._on_wrapper_end(watched)
            await asyncio.sleep(POLL_SECONDS)

    def _has_ended(self, watched: _Watched) -> bool:
        if watched.popen is not None:
            return watched.popen.poll() is not None
        return not _is_same_process(watched.pid, watched.start_time)

    def _on_wrapper_end(self, watched: _Watched) -> None:
        """The wrapper has ended: reap it, find the exit code, report unless a kill will."""
        if watched.ended:
            return
        code: int | None = None
        if watched.popen is not None:
            status = watched.popen.poll()  # waitpid(WNOHANG) on our own child
            if status is None:
                return  # spurious wake-up
            code = 128 - status if status < 0 else status  # killed by signal N -> 128 + N
        recorded = read_exit_file(watched.exit_path)
        if recorded is not None:
            code = recorded  # the command's own code, even if the wrapper was SIGKILLed after
        watched.ended = True
        watched.exit_code = code
        self._unwatch(watched)
        watched.wrapper_gone.set()
        if not watched.report_deferred:
            self._report(watched)

    def _report(self, watched: _Watched) -> None:
        if not self._is_current(watched):
            return  # already reported, or forgotten by close()
        del self._procs[watched.task_id]
        self._callback(ExitInfo(watched.task_id, watched.exit_code, watched.kill_requested))

    def _is_current(self, watched: _Watched) -> bool:
        return self._procs.get(watched.task_id) is watched

    # ------------------------------------------------------------------ kill

    async def kill(self, task_id: str, grace_seconds: float) -> None:
        """SIGTERM to the task's whole process group; SIGKILL whatever is left after the grace.

        Returns once the exit has been reported (or, for a process stuck in the kernel, after a
        last wait; its exit is then reported whenever it does end). A kill carries on to the
        end even if the caller is cancelled; a second kill() of the same task joins the first.
        """
        watched = self._procs.get(task_id)
        if watched is None:
            return
        if watched.killer is None or watched.killer.done():
            watched.kill_requested = True
            watched.report_deferred = True
            watched.killer = self._get_loop().create_task(self._kill(watched, grace_seconds))
        await asyncio.shield(watched.killer)

    async def _kill(self, watched: _Watched, grace_seconds: float) -> None:
        loop = self._get_loop()
        pgid = watched.pid
        try:
            _signal_group(pgid, signal.SIGTERM)
            # A stopped task would only see its SIGTERM once continued.
            _signal_group(pgid, signal.SIGCONT)
            await self._wait_gone(watched, loop.time() + max(0.0, grace_seconds))
            if self._is_current(watched) and _group_alive(pgid):
                _signal_group(pgid, signal.SIGKILL)
                await self._wait_gone(watched, loop.time() + AFTER_SIGKILL_SECONDS)
        finally:
            watched.report_deferred = False
            if watched.ended:
                self._report(watched)

    async def _wait_gone(self, watched: _Watched, deadline: float) -> None:
        """Until the wrapper has been reaped and no process of its group is left, or deadline."""
        loop = self._get_loop()
        try:
            await asyncio.wait_for(watched.wrapper_gone.wait(), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            return
        # Orphaned grandchildren may outlive the wrapper by a little (or a lot, if they ignore
        # SIGTERM); they are in the group, so the group tells.
        while self._is_current(watched) and _group_alive(watched.pid):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(GROUP_POLL_SECONDS, remaining))

    async def terminate_all(self, grace_seconds: float) -> None:
        await asyncio.gather(*(self.kill(t, grace_seconds) for t in list(self._procs)))

    # ------------------------------------------------------------------ misc

    def running_ids(self) -> set[str]:
        return set(self._procs)

    def pids(self) -> dict[str, int]:
        return {task_id: w.pid for task_id, w in self._procs.items()}

    # Interim stand-ins until containment lands (executor-containment branch).
    def set_gone_callback(self, callback: GoneCallback) -> None:
        self._gone = callback

    def scan(self) -> list[FoundProcess]:
        return []

    def watch_strays(self, task_id: str, pids: list[int]) -> int:
        return 0

    def lingering(self, task_id: str) -> int:
        return 0

    def close(self) -> None:
        """Stop watching. Never signals a task: they keep running and are re-adopted later."""
        for watched in self._procs.values():
            self._unwatch(watched)
            watched.wrapper_gone.set()  # lets a kill in progress return
        self._procs.clear()
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
