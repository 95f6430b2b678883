"""Tasks as local process groups that outlive ANT, watched through pidfds.

Each task runs under a small bash wrapper in its own session (so its whole process tree can be
signalled as a group, and ANT's own death does not take it down). The wrapper runs the command in
a child bash, then writes the exit code next to the log: that is how a task that ends while ANT is
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
    LaunchError,
    LaunchRequest,
    ProcessInfo,
)

# $1 = command, $2 = exit file. `trap :` (a handler, not "ignore", which the task would inherit)
# lets the wrapper survive the group SIGTERM long enough to record the command's exit code. The
# command runs in a subshell (a fork, no second exec; traps reset to default there), with the
# positional parameters cleared so it sees none of the wrapper's.
WRAPPER = """trap : TERM INT HUP
__ant_cmd=$1 __ant_exit=$2
shift 2
( eval "$__ant_cmd" )
__ant_rc=$?
printf '%d\\n' "$__ant_rc" > "$__ant_exit"
exit "$__ant_rc"
"""
START_TIME_TOLERANCE = 0.05
MIN_FREE_BYTES = 64 * 1024  # below this a task's log (and exit code) could not be written


def read_exit_file(path: Path) -> int | None:
    """The exit code a wrapper recorded, or None if there is none (or it is garbage)."""
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    try:
        return int(text)
    except ValueError:
        return None


def process_start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class _Watched:
    task_id: str
    pid: int
    exit_path: Path
    popen: subprocess.Popen[bytes] | None  # None for an adopted process (not our child)
    pidfd: int | None = None
    kill_requested: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class LocalExecutor:
    def __init__(self) -> None:
        self._procs: dict[str, _Watched] = {}
        self._callback: ExitCallback = lambda info: None
        self._loop: asyncio.AbstractEventLoop | None = None
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
            what = f"directory {request.cwd}" if isinstance(exc, FileNotFoundError) else "bash"
            raise LaunchError(f"cannot start task ({what}): {exc.strerror}") from None
        finally:
            os.close(log_fd)
        watched = _Watched(request.task_id, popen.pid, request.exit_path, popen)
        self._procs[request.task_id] = watched
        start_time = process_start_time(popen.pid) or time.time()
        self._watch(watched, loop)
        return ProcessInfo(popen.pid, start_time)

    def adopt(self, task_id: str, pid: int, start_time: float, exit_path: Path) -> bool:
        """Watch a task started before ANT restarted, if it is that very process still."""
        loop = self._get_loop()
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            if abs(proc.create_time() - start_time) > START_TIME_TOLERANCE:
                return False  # the pid was reused by another process
        except psutil.Error:
            return False
        watched = _Watched(task_id, pid, exit_path, None)
        self._procs[task_id] = watched
        self._watch(watched, loop)
        return True

    # ------------------------------------------------------------------ watching

    def _watch(self, watched: _Watched, loop: asyncio.AbstractEventLoop) -> None:
        try:
            watched.pidfd = os.pidfd_open(watched.pid)
        except ProcessLookupError:
            loop.call_soon(self._finish, watched)
            return
        except (AttributeError, OSError):
            self._ensure_poller(loop)  # no pidfd support: poll instead
            return
        loop.add_reader(watched.pidfd, self._finish, watched)

    def _ensure_poller(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._poller is None or self._poller.done():
            self._poller = loop.create_task(self._poll())

    async def _poll(self) -> None:
        while any(w.pidfd is None for w in self._procs.values()):
            for watched in [w for w in self._procs.values() if w.pidfd is None]:
                if self._has_ended(watched):
                    self._finish(watched)
            await asyncio.sleep(0.2)

    def _has_ended(self, watched: _Watched) -> bool:
        if watched.popen is not None:
            return watched.popen.poll() is not None
        try:
            return psutil.Process(watched.pid).status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return True

    def _finish(self, watched: _Watched) -> None:
        """The process has ended: reap it, find its exit code, report once."""
        if self._procs.get(watched.task_id) is not watched:
            return
        code: int | None = None
        if watched.popen is not None:
            status = watched.popen.poll()
            if status is None:
                return  # spurious wake-up
            code = 128 - status if status < 0 else status
        recorded = read_exit_file(watched.exit_path)
        if recorded is not None:
            code = recorded
        del self._procs[watched.task_id]
        if watched.pidfd is not None:
            self._get_loop().remove_reader(watched.pidfd)
            os.close(watched.pidfd)
        watched.ended.set()
        self._callback(ExitInfo(watched.task_id, code, watched.kill_requested))

    # ------------------------------------------------------------------ kill

    async def kill(self, task_id: str, grace_seconds: float) -> None:
        """SIGTERM to the task's whole process group; SIGKILL whatever is left after the grace."""
        watched = self._procs.get(task_id)
        if watched is None:
            return
        watched.kill_requested = True
        pgid = watched.pid  # the wrapper leads its own session and process group
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                break
            await asyncio.sleep(0.05)
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
        try:
            await asyncio.wait_for(watched.ended.wait(), timeout=5)
        except asyncio.TimeoutError:
            pass

    async def terminate_all(self, grace_seconds: float) -> None:
        await asyncio.gather(*(self.kill(t, grace_seconds) for t in list(self._procs)))

    # ------------------------------------------------------------------ misc

    def running_ids(self) -> set[str]:
        return set(self._procs)

    def pids(self) -> dict[str, int]:
        return {task_id: w.pid for task_id, w in self._procs.items()}

    def close(self) -> None:
        """Stop watching. Never signals a task: they keep running and are re-adopted later."""
        for watched in self._procs.values():
            if watched.pidfd is not None:
                try:
                    self._get_loop().remove_reader(watched.pidfd)
                except RuntimeError:
                    pass
                os.close(watched.pidfd)
        self._procs.clear()
        if self._poller is not None:
            self._poller.cancel()
