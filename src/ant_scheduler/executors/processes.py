"""Finding processes through /proc: identity, lineage, the task marker, the child subreaper.

Linux only (as is the local executor). Everything here reads small /proc files with raw
os.open/os.read (no file objects, no psutil), because some of it runs on the event loop:

- read_stat: one process's state, parent, group, session and start time (~10 µs).
- children: a process's direct children, from /proc/<pid>/task/*/children (needs a kernel with
  CONFIG_PROC_CHILDREN, which distribution kernels have; children_listing_supported() says).
- scan: every process whose environment carries a server's marker (ANT_SERVER_ID, set by the
  executor on every task and inherited by all its children); it reads /proc/*/environ of every
  process: about 0.3-0.6 ms with 70-120 processes and 15 ms with 1,000 (measured on a loaded
  2-core VM), so it is for start-up, kills of adopted tasks and self-checks, not for every task
  end.
- sweep: scan plus the stat line of every process (parent, group, session), for attributing
  processes that lost the marker (`env -i`) by their lineage or session.

/proc/<pid>/environ is the environment the process was exec'd with: a process that clears its
environment and execs again loses the marker (lineage and session still tell, see the executor).
For a moment during an execve (between the switch to the new image and the setup of its
environment; env_end in the stat line is 0 then) the environment reads as empty: a process
caught there would be missed, so readers wait for it a little (read_environ_settled; well under
a millisecond when measured, EXEC_SETTLE_SECONDS at most per scan). Kernel threads, which have
no environment, are skipped by one read of kthreadd's children.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import time
from dataclasses import dataclass

from ant_scheduler.executors.base import SERVER_ID_ENV, TASK_ID_ENV, FoundProcess

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START_TIME_TOLERANCE = 0.05  # seconds; start times come in clock ticks (10 ms)
# A process caught between execve's switch to its new image and the setup of that image's
# environment reads as having none (a window of well under a millisecond, longer under load);
# a scan waits up to this long, in all, for such processes to show their new environment.
EXEC_SETTLE_SECONDS = 0.005
_PF_EXITING = 0x00000004
_PF_KTHREAD = 0x00200000
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_boot_time: float | None = None


def boot_time() -> float:
    """When the machine booted (/proc/stat btime), as psutil computes it: start times match."""
    global _boot_time
    if _boot_time is None:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime"):
                    _boot_time = float(line.split()[1])
                    break
            else:  # pragma: no cover - every Linux has it
                raise RuntimeError("no btime in /proc/stat")
    return _boot_time


@dataclass(frozen=True, slots=True)
class ProcStat:
    pid: int
    state: str  # R, S, D, T, Z, ... (Z and X: ended, not reaped)
    ppid: int
    pgid: int
    sid: int
    start_ticks: int  # clock ticks after boot: with the pid, the process's identity
    task_id: str | None = None  # the marker of the scanned server (sweep only)
    flags: int = 0  # PF_* (kernel thread, exiting, ...)
    env_end: int = -1  # where its environment ends; 0 while an execve sets it up (-1: unknown)
    image: tuple[bytes, int] = (b"", 0)  # name and code address: they change with an execve

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")

    @property
    def kthread(self) -> bool:
        return bool(self.flags & _PF_KTHREAD)

    @property
    def mid_exec(self) -> bool:
        """In the middle of an execve: its environment reads as empty for the moment. (An
        exiting process has no environment either, for good.)"""
        return (
            self.env_end == 0 and not self.flags & (_PF_KTHREAD | _PF_EXITING) and not self.zombie
        )

    @property
    def start_time(self) -> float:
        return boot_time() + self.start_ticks / CLOCK_TICKS

    @property
    def identity(self) -> tuple[int, int]:
        return (self.pid, self.start_ticks)


def _read(path: str, size: int = 4096, *, once: bool = False) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        while True:
            chunk = os.read(fd, size)
            if not chunk:
                break
            chunks.append(chunk)
            if once:
                break
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def parse_stat(pid: int, data: bytes) -> ProcStat | None:
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    end = data.rfind(b")")
    fields = data[end + 2 :].split()
    if end < 0 or len(fields) < 20:
        return None
    try:
        return ProcStat(
            pid,
            fields[0].decode("ascii", "replace"),
            int(fields[1]),
            int(fields[2]),
            int(fields[3]),
            int(fields[19]),
            flags=int(fields[6]),
            env_end=int(fields[48]) if len(fields) > 48 else -1,  # field 51; Linux >= 3.5
            image=(data[data.find(b"(") + 1 : end], int(fields[23]) if len(fields) > 23 else 0),
        )
    except ValueError:
        return None


def read_stat(pid: int) -> ProcStat | None:
    """The process's /proc/<pid>/stat, or None if there is no such process (any more)."""
    data = _read(f"/proc/{pid}/stat", once=True)  # a stat line comes in one read
    return None if not data else parse_stat(pid, data)


def start_time(pid: int) -> float | None:
    """The process's create time (seconds since the epoch, as psutil's create_time)."""
    stat = read_stat(pid)
    return None if stat is None else stat.start_time


def is_same_process(pid: int, start: float) -> bool:
    """Alive (not a zombie) and created when we think: a reused pid is never taken for it."""
    stat = read_stat(pid)
    return (
        stat is not None
        and not stat.zombie
        and abs(stat.start_time - start) <= START_TIME_TOLERANCE
    )


def read_environ(pid: int) -> bytes | None:
    """The environment the process was exec'd with (NUL-separated), None if unreadable."""
    return _read(f"/proc/{pid}/environ", 65536)


def read_environ_settled(pid: int, deadline: float) -> bytes | None:
    """read_environ, waiting (until `deadline`, time.monotonic) for a process caught in the
    middle of an execve to show its new environment."""
    environ = read_environ(pid)
    while environ == b"":
        stat = read_stat(pid)
        if stat is None:
            break
        if not stat.mid_exec:  # no environment, or the moment just passed: one more read
            return read_environ(pid)
        if time.monotonic() >= deadline:
            break
        time.sleep(0.0002)
        environ = read_environ(pid)
    return environ


def env_value(environ: bytes, name: str) -> str | None:
    """The value of `name` in a NUL-separated environment block (the first one, as getenv)."""
    key = name.encode() + b"="
    if environ.startswith(key):
        start = len(key)
    else:
        at = environ.find(b"\0" + key)
        if at < 0:
            return None
        start = at + 1 + len(key)
    end = environ.find(b"\0", start)
    return os.fsdecode(environ[start:] if end < 0 else environ[start:end])


def marker(environ: bytes, server_id: str) -> str | None:
    """The task id the environment is marked with, if it is marked by this server."""
    if env_value(environ, SERVER_ID_ENV) != server_id:
        return None
    return env_value(environ, TASK_ID_ENV) or None


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _kernel_threads() -> set[int]:
    """kthreadd (pid 2, where the kernel's threads are visible at all) and its children: one
    read, so that a scan need not read their (always empty) environments one by one."""
    stat = read_stat(2)
    if stat is None or not stat.kthread:
        return set()
    return {2, *children(2)}


def _environs(server_id: str, pids: list[int]) -> dict[int, tuple[str, bytes]]:
    """pid -> (task id, environment) of the processes marked by this server."""
    needle = f"{SERVER_ID_ENV}={server_id}".encode()
    out: dict[int, tuple[str, bytes]] = {}
    unsettled = []
    for pid in pids:
        environ = read_environ(pid)
        if environ == b"":
            unsettled.append(pid)  # none at all (env -i), or in the middle of an execve
        elif environ and needle in environ:  # a quick pre-filter, then the exact check
            task_id = marker(environ, server_id)
            if task_id is not None:
                out[pid] = (task_id, environ)
    deadline = time.monotonic() + EXEC_SETTLE_SECONDS
    for pid in unsettled:
        environ = read_environ_settled(pid, deadline)
        task_id = marker(environ, server_id) if environ else None
        if environ and task_id is not None:
            out[pid] = (task_id, environ)
    return out


def scan(server_id: str) -> list[FoundProcess]:
    """Every live (non-zombie) process whose environment has this server's marker.

    Reads /proc/*/environ of every process but kernel threads (those it may not read are
    skipped: a task runs as ANT's user, so its processes are always readable), plus the stat
    line of the matches.
    """
    skip = _kernel_threads() | {os.getpid()}
    found = []
    for pid, (task_id, environ) in _environs(
        server_id, [p for p in _pids() if p not in skip]
    ).items():
        stat = read_stat(pid)
        if stat is None or stat.zombie:
            continue
        found.append(
            FoundProcess(
                task_id,
                pid,
                stat.start_time,
                stat.sid == pid,
                env_value(environ, "CUDA_VISIBLE_DEVICES"),
            )
        )
    return found


def sweep(server_id: str, *, stat_all: bool) -> list[ProcStat]:
    """The processes marked by this server (with their task id), or with stat_all the stat line
    of every process (task_id set on the marked ones).

    Without stat_all this costs what scan() costs; with it, one more small read per process.
    """
    me = os.getpid()
    if not stat_all:
        skip = _kernel_threads() | {me}
        marked = _environs(server_id, [p for p in _pids() if p not in skip])
        out = []
        for pid, (task_id, _) in marked.items():
            stat = read_stat(pid)
            if stat is not None:
                out.append(dataclasses.replace(stat, task_id=task_id))
        return out
    stats = [s for s in map(read_stat, _pids()) if s is not None and s.pid != me]
    # Zombies and kernel threads carry no environment.
    readable = [s.pid for s in stats if not s.zombie and not s.kthread]
    marked = _environs(server_id, readable)
    return [
        dataclasses.replace(s, task_id=marked[s.pid][0]) if s.pid in marked else s for s in stats
    ]


def children(pid: int) -> list[int]:
    """The direct children of a process (of all its threads); [] if it is gone."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tids:
        data = _read(f"/proc/{pid}/task/{tid}/children")
        if data:
            out.extend(int(child) for child in data.split())
    return out


def children_listing_supported() -> bool:
    pid = os.getpid()
    return os.path.exists(f"/proc/{pid}/task/{pid}/children")


def _prctl(option: int, arg: int | ctypes.c_int) -> int:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.prctl
    except (OSError, AttributeError):
        return -1
    value = ctypes.byref(arg) if isinstance(arg, ctypes.c_int) else ctypes.c_ulong(arg)
    result: int = func(option, value, ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    return result


def set_child_subreaper(on: bool) -> bool:
    """Make this process the reaper of its descendants' orphans (prctl); False if it failed."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1 if on else 0) == 0


def is_child_subreaper() -> bool:
    value = ctypes.c_int(0)
    return _prctl(_PR_GET_CHILD_SUBREAPER, value) == 0 and value.value != 0


def open_pidfd(pid: int) -> int | None:
    """A pidfd for `pid`, or None (no such process, no pidfd support, out of fds)."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        fd: int = pidfd_open(pid)
    except OSError:
        return None
    return fd


def signal_process(pid: int, start_ticks: int, sig: int) -> bool:
    """Send `sig` to the process if it still is the one that started at start_ticks.

    The check and the signal go through a pidfd, so a pid reused in between is never hit
    (without pidfd support a plain kill follows the check).
    """
    pidfd = open_pidfd(pid)
    try:
        stat = read_stat(pid)
        if stat is None or stat.start_ticks != start_ticks:
            return False
        if pidfd is None:
            os.kill(pid, sig)
        else:
            signal.pidfd_send_signal(pidfd, sig)
        return True
    except OSError:
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def signal_group(pgid: int, sig: int) -> bool:
    # killpg reaches every member even when the leader is gone. Never pgid 0 (our own group)
    # or 1, and never our own group by number: callers exclude it, this is a second guard.
    if pgid <= 1 or pgid == os.getpgrp():
        return False
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


__all__ = [
    "START_TIME_TOLERANCE",
    "ProcStat",
    "boot_time",
    "children",
    "children_listing_supported",
    "env_value",
    "is_child_subreaper",
    "is_same_process",
    "marker",
    "open_pidfd",
    "parse_stat",
    "read_environ",
    "read_environ_settled",
    "read_stat",
    "scan",
    "set_child_subreaper",
    "signal_group",
    "signal_process",
    "start_time",
    "sweep",
]
