"""Tasks as local process trees that outlive ANT, watched through pidfds, ended as a whole.

Launch
------
Each task runs under a small shell wrapper (wrappers.py: bash, or dash for a plain command) in
its own session (so its process group can be signalled as a whole, and ANT's own death does not
take it down). The wrapper runs the command, then writes its exit code to the exit file next to
the log: that is how a task that ends
while ANT is down still reports its real exit code, and how a re-adopted task (not ANT's child,
so it cannot be waited for) reports it at all.

Nothing on the way is followed through a symlink someone planted: the executor creates the
log's directory itself (0700, 0750 with log_group_readable), opens it with O_NOFOLLOW and opens
the log (append) and the exit file (truncated) relative to it with O_NOFOLLOW, refusing anything
that is not a plain file with one link. The exit file reaches the wrapper as an inherited file
descriptor (the command's own subshell closes it), so no path is resolved when the task ends.
ant_wd and the conda executable are checked before the start, so a mistake is a LaunchError with
a reason instead of a bare exit code 1. ANT's own secrets (hidden_env, ANT_TOKEN) are not passed on.

Which processes are a task's
----------------------------
Every process a task starts inherits ANT_TASK_ID and ANT_SERVER_ID (its environment as exec'd,
readable in /proc/<pid>/environ). A task's processes can leave its process group and session
(`setsid`, a double fork) and outlive its wrapper; the task then keeps its GPUs: its exit is
reported with `lingering` = how many are left, and the gone callback says when the last is gone.
They are found in one of two ways:

- Subreaper (become_subreaper=True, tasks this ANT started): ANT is a child subreaper
  (prctl(PR_SET_CHILD_SUBREAPER)), so an orphan anywhere in a task's tree is re-parented to ANT,
  not to init. ANT's children are listed from /proc/self/task/*/children; a child that is not a
  wrapper is a "stray" of the task whose marker it carries (or, for one that cleared its
  environment: whose wrapper's session it is in while that wrapper is not yet reaped, or that
  was seen in the task's tree before). A task's live processes are then its strays and their
  descendants (/proc/<pid>/task/*/children again). The kernel re-parents a process's children
  before it reports the process's end, so when a wrapper ends, whatever it left is already ANT's
  child: the check costs a listing of ANT's children, no /proc scan. Strays are ANT's children
  now and ANT must reap them, but never with waitpid(-1), which would take the wrappers' exit
  statuses away from subprocess.Popen: each stray is watched through a pidfd and waited for by
  its own pid. When a stray dies, its children have just been re-parented to ANT: the task is
  looked at again. A dead child of ANT outside ANT's own session that is no wrapper is an orphan
  that died before anyone looked at it; it is reaped as well (ANT starts nothing else in a
  session of its own).
- Scanning (adopted tasks, watch_strays, and every task when the subreaper is off or could not
  be set): a task started by an earlier ANT is not in this ANT's process tree; its orphans went
  to init (or to a subreaper above the old ANT) and nothing cheap lists them. Its processes are
  found by reading /proc/*/environ for the marker (processes.scan: 0.2-0.6 ms with ~100
  processes, ~12-17 ms with 1,000), up to the wrapper's end also by its process group, and with
  their descendants; the tops of those trees are watched through pidfds. That happens when its
  wrapper ends, when one of its watched processes ends, and during a kill. Adopted tasks are few
  and only exist after a restart, so this cost stays off the common path; without the subreaper
  it is paid at every task end (measured 0.35-0.55 ms per task end with ~75 processes, 15 ms
  with ~1,070, against 0.05 ms with the subreaper).

kill() signals the wrapper's group and every process found (and their groups, never ANT's own
group, 0 or 1), looks again while parents die and orphans appear, SIGKILLs after the grace and
ends with a scan as a self-check. A process that both cleared its environment and left the
task's session before ANT saw it cannot be told from any other process: that is the limit of
marking by environment (cgroups would not have it, but need a delegated hierarchy). Strays that
are still ANT's children when it stops watching (close()) become zombies when they end.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ant_scheduler.core.errors import InvalidQuery
from ant_scheduler.executors import processes
from ant_scheduler.executors.base import (
    SERVER_ID_ENV,
    TASK_ID_ENV,
    Ended,
    ExitCallback,
    ExitInfo,
    FoundProcess,
    GoneCallback,
    Handle,
    LaunchError,
    LaunchRequest,
    LeftBehind,
    Lost,
    Reattached,
    Recovery,
    Running,
    WakeCallback,
)
from ant_scheduler.executors.logfiles import (
    LogFileOutput,
    exit_path_for,
    link_files,
    log_path_for,
    renamed_handle,
    task_files,
    unlink_files,
)
from ant_scheduler.executors.processes import START_TIME_TOLERANCE, ProcStat
from ant_scheduler.executors.spare_files import SpareFiles
from ant_scheduler.executors.wrappers import (
    WRAPPER,
    WRAPPER_PLAIN,
    WRAPPER_SIMPLE,
    is_simple_command,
    plain_command,
)

MIN_FREE_BYTES = 64 * 1024  # below this a task's log (and exit code) could not be written
POLL_SECONDS = 0.2  # only without pidfd support
KILL_POLL_SECONDS = 0.05  # a kill looks again this often (and whenever a process ends)
KILL_SCAN_SECONDS = 0.1  # the same when that takes a /proc scan
AFTER_SIGKILL_SECONDS = 5.0  # a process stuck in the kernel (D state) may take this long or more
DEFAULT_HIDDEN_ENV = frozenset({"ANT_TOKEN"})
NUMA_ROOT = Path("/sys/devices/system/node")  # nodeN/cpulist: the CPUs of NUMA node N
SEEN_LIMIT = 4096  # identities remembered per task before the dead ones are forgotten


def read_exit_file(path: Path) -> int | None:
    """The exit code a wrapper recorded, or None if there is none (empty, garbage, a symlink)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, 16)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        code = int(text.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return None
    return code if 0 <= code <= 255 else None


def process_start_time(pid: int) -> float | None:
    return processes.start_time(pid)


def _reason(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and os.path.islink(path)):
        return "it is a symbolic link, which ANT does not follow"
    if exc.errno == errno.ENXIO:  # a FIFO (or socket) opened for writing without blocking
        return "it is not a regular file"
    return exc.strerror or str(exc)


class _Refused(Exception):
    """A path that opened but must not be used (not a plain file, more than one link)."""


def _open_dir(path: Path, mode: int) -> int:
    """The directory, created with `mode` if missing; never through a symlink at `path`."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags)
    except FileNotFoundError:
        pass
    os.makedirs(path.parent, mode=mode, exist_ok=True)
    try:
        os.mkdir(path, mode)
        created = True
    except FileExistsError:  # made meanwhile, or a dangling symlink: the open tells
        created = False
    fd = os.open(path, flags)
    if created:
        try:
            os.fchmod(fd, mode)  # exactly: the umask may have taken bits away
        except OSError:
            os.close(fd)
            raise
    return fd


def _open_file(dir_fd: int, name: str, mode: int, *, append: bool) -> int:
    """A plain file in the directory: created with `mode`, opened without following a symlink
    (and without blocking on a planted FIFO); appended to, or truncated."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(name, flags | (os.O_APPEND if append else 0), mode, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Refused("it is not a regular file")
        if st.st_nlink != 1:
            raise _Refused(f"it has {st.st_nlink} hard links")
        if stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
        os.set_blocking(fd, True)
        if not append:
            os.ftruncate(fd, 0)  # a code left by an earlier run must not be read as this one's
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass(eq=False)
class _Stray:
    """A process of the task outside its wrapper whose end is watched: its children may then be
    re-parented (to ANT, with the subreaper) and need looking for."""

    pid: int
    start_ticks: int
    child: bool  # ANT's own child (re-parented to the subreaper): ANT reaps it
    pidfd: int | None = None


@dataclass(eq=False)
class _Task:
    task_id: str
    pid: int  # the wrapper; it leads its own session: this is also its group and session id
    start_time: float  # 0.0 until settle() reads it (a started task: only for the record)
    exit_path: Path | None
    popen: subprocess.Popen[bytes] | None  # None for an adopted process (not our child)
    by_scan: bool  # its orphans do not come to ANT: find its processes by scanning /proc
    pidfd: int | None = None
    kill_requested: bool = False
    # While a kill runs, it (not the end of the wrapper) reports the exit, once the whole task
    # is gone: the engine frees the task's GPUs on that report.
    report_deferred: bool = False
    ended: bool = False  # the wrapper
    exit_code: int | None = None
    reported: bool = False  # the exit
    gone_due: bool = False  # reported with lingering > 0 (or watch_strays): a gone call is owed
    # While the wrapper is not reaped its pid (the session id) cannot be reused: processes in
    # that session are the task's. Afterwards only markers and lineage tell.
    session_pinned: bool = True
    strays: dict[int, _Stray] = field(default_factory=dict)
    seen: set[tuple[int, int]] = field(default_factory=set)  # (pid, start ticks) found before
    last_found: list[ProcStat] = field(default_factory=list)
    wrapper_gone: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    killer: asyncio.Task[None] | None = None
    recheck_due: bool = False


class LocalExecutor:
    """Start, watch, kill and re-adopt tasks on this machine, with every process they start.

    Every method must be called on the event loop's thread; the callbacks run there too: the
    exit callback exactly once per started or adopted task, the gone callback once per task
    reported with lingering processes or passed to watch_strays (never after close()).

    server_id marks every task process (ANT_SERVER_ID) and is how they are found again: it must
    stay the same across restarts of one ANT and differ between ANTs on the same machine (two
    ANTs with the same id would take each other's processes for their own). become_subreaper
    makes finding a task's processes cheap (see the module docstring); close() undoes it.
    """

    name = "local"

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        log_dir: Path | None = None,
        use_pidfd: bool = True,
        server_id: str = "",
        become_subreaper: bool = False,
        log_group_readable: bool = False,
        hidden_env: frozenset[str] = DEFAULT_HIDDEN_ENV,
        numa_root: Path = NUMA_ROOT,
    ) -> None:
        if "\0" in server_id:
            raise ValueError("server_id must not contain NUL")
        self._loop = loop
        # Logs go to <log_dir>/<session>/<task_id>.log, the exit code next to it (.exit).
        self._log_dir = (log_dir or Path("ant_runner_logs")).resolve()
        self._use_pidfd = use_pidfd  # False forces the polling fallback (tests use it)
        self._server_id = server_id
        self._hidden_env = hidden_env
        self._numa_root = numa_root  # where the NUMA nodes' CPU lists are (tests give their own)
        self._dir_mode = 0o750 if log_group_readable else 0o700
        self._file_mode = 0o640 if log_group_readable else 0o600
        # Log and exit files are renamed into place from these (spare_files.py).
        self._spares = SpareFiles(
            self._log_dir / ".spare",
            lambda path: _open_dir(path, self._dir_mode),
            self._file_mode,
        )
        self._tasks: dict[str, _Task] = {}
        self._wrappers: dict[int, _Task] = {}  # pid -> task, while the wrapper is not reaped
        self._stray_pids: dict[int, _Task] = {}  # ANT's children known as strays
        self._foreign: set[tuple[int, int]] = set()  # ANT's children that are no task's
        self._callback: ExitCallback = lambda info: None
        self._gone_callback: GoneCallback = lambda task_id: None
        self._poller: asyncio.Task[None] | None = None
        self._pid = os.getpid()
        self._sid = os.getsid(0)
        # Found once: a bare "bash" is looked for in PATH at every start (a failed execve per
        # directory before it). Resolved to its real path: a symlink could be re-pointed.
        found = shutil.which("bash")
        self._bash = os.path.realpath(found) if found else "bash"
        found = shutil.which("dash")  # for plain commands (wrappers.py): none, bash for all
        self._dash = os.path.realpath(found) if found else None
        # The subreaper needs the children listing, or finding strays would take a scan anyway.
        self._subreaper = (
            become_subreaper
            and processes.children_listing_supported()
            and processes.set_child_subreaper(True)
        )

    @property
    def subreaper(self) -> bool:
        """Whether ANT is the subreaper of its tasks (the cheap way to find their processes)."""
        return self._subreaper

    def set_exit_callback(self, callback: ExitCallback) -> None:
        self._callback = callback

    def set_gone_callback(self, callback: GoneCallback) -> None:
        self._gone_callback = callback

    def set_wake_callback(self, callback: WakeCallback) -> None:
        """This machine is always there: nothing to wake the scheduler for."""

    def availability(self) -> str | None:
        return None

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    # ------------------------------------------------------------------ start / adopt

    def prepare(self, request: LaunchRequest) -> Handle:
        """Where the task's log and exit code will go (the handle before its process exists)."""
        if request.n_nodes != 1 or any(rank.node for rank in request.placement):
            nodes = ", ".join(rank.node or '""' for rank in request.placement)
            raise LaunchError(
                f"the local executor runs tasks on this machine only, not on {request.n_nodes} "
                f"node(s) ({nodes})"
            )
        try:
            log_path = log_path_for(
                self._log_dir, request.session, request.task_id, request.attempt
            )
        except ValueError as exc:
            raise LaunchError(str(exc)) from None
        return {"log": str(log_path), "exit": str(exit_path_for(log_path))}

    def start(self, request: LaunchRequest, handle: Handle) -> Handle:
        loop = self._get_loop()
        current = self._tasks.get(request.task_id)
        if current is not None:
            if current.reported:
                raise LaunchError(
                    f"task {request.task_id!r} still has processes left from its last run"
                )
            raise LaunchError(f"task {request.task_id!r} is already running")
        log_path, exit_path = Path(handle["log"]), Path(handle["exit"])
        env = self._task_env(request)
        self._check_workdir(request, env)
        self._check_conda(request, env)
        popen = self._launch(request, env, log_path, exit_path)
        # Its start time (its identity for a later ANT, with the pid) is read by settle(): not
        # needed while it is ANT's child, and /proc is slow to answer right after an exec.
        task = _Task(
            request.task_id,
            popen.pid,
            0.0,
            exit_path,
            popen,
            by_scan=not self._subreaper,
        )
        self._tasks[task.task_id] = task
        self._wrappers[task.pid] = task
        self._watch_wrapper(task, self._pidfd(popen.pid), loop)
        return {**handle, "pid": task.pid}

    def settle(self, handle: Handle) -> Handle:
        """Add the wrapper's start time to the handle of a task ANT started. It is ANT's child
        until reaped, so its pid is not anyone else's yet: /proc tells the truth (a wrapper
        already reaped has ended, and its end is recorded with this handle instead)."""
        task = self._wrappers.get(handle.get("pid"))  # type: ignore[arg-type]
        if task is None or "start_time" in handle:
            return handle
        if not task.start_time:
            task.start_time = process_start_time(task.pid) or 0.0
        return {**handle, "start_time": task.start_time} if task.start_time else handle

    def describe(self, handle: Handle) -> tuple[int | None, str | None]:
        pid, log = handle.get("pid"), handle.get("log")
        return (pid if isinstance(pid, int) else None), (log if isinstance(log, str) else None)

    def rename_files(self, handle: Handle, old_id: str, new_id: str) -> Handle:
        renamed, pairs = renamed_handle(handle, old_id, new_id)
        link_files(pairs)
        return renamed

    def drop_names(self, handle: Handle, task_id: str) -> None:
        unlink_files(task_files(handle, task_id))

    def output(self, handle: Handle, rank: int = 0) -> LogFileOutput:
        if rank != 0:
            raise InvalidQuery(f"rank: a task of the local executor has rank 0 only, not {rank}")
        return LogFileOutput(Path(str(handle.get("log", ""))))

    def recover(self, running: Mapping[str, Handle | None]) -> Recovery:
        """Re-adopt what still runs (by its recorded pid and start time, or, for a task recorded
        as starting, by its marker), read the exit code of what ended, and watch the processes
        tasks left behind. One /proc scan for all of it."""
        found: dict[str, list[FoundProcess]] = {}
        for proc in self.scan():
            found.setdefault(proc.task_id, []).append(proc)
        results: dict[str, Reattached] = {}
        for task_id, handle in running.items():
            results[task_id] = self._reattach(task_id, handle or {}, found.pop(task_id, []))
        left: dict[str, LeftBehind] = {}
        for task_id, procs in found.items():
            alive = self.watch_strays(task_id, [p.pid for p in procs])
            if alive:
                gpus = {g for p in procs for g in _cuda_ids(p.cuda_visible_devices)}
                left[task_id] = LeftBehind(alive, tuple(sorted(gpus)))
        return Recovery(results, left)

    def _reattach(self, task_id: str, handle: Handle, procs: list[FoundProcess]) -> Reattached:
        exit_path = Path(handle["exit"]) if isinstance(handle.get("exit"), str) else None
        candidates: list[tuple[int, float]] = []
        if isinstance(handle.get("pid"), int) and isinstance(handle.get("start_time"), float):
            candidates.append((handle["pid"], handle["start_time"]))
        candidates += [(p.pid, p.start_time) for p in procs if p.session_leader]
        if exit_path is not None:
            for pid, start_time in candidates:
                if self.adopt(task_id, pid, start_time, exit_path):
                    return Running({**handle, "pid": pid, "start_time": start_time})
        lingering = self.watch_strays(task_id, [p.pid for p in procs]) if procs else 0
        code = read_exit_file(exit_path) if exit_path is not None else None
        if code is not None and exit_path is not None:
            return Ended(code, _mtime(exit_path), lingering)
        if "pid" not in handle:
            return Lost("ANT stopped while starting it and no process of it was found", lingering)
        return Lost("the process vanished while ANT was down (exit code unknown)", lingering)

    def _pinning(self, numa_nodes: tuple[int, ...]) -> Callable[[], None] | None:
        """What pins a task to the CPUs of these NUMA nodes in its child before the exec (the
        wrapper and all it starts inherit it); None when not asked or not possible here: nodes
        this machine does not have, or none of their CPUs allowed to ANT (silently unpinned).
        Only pinned tasks pay for a preexec_fn (Popen forks instead of a faster spawn then)."""
        if not numa_nodes:
            return None
        cpus: set[int] = set()
        for node in numa_nodes:
            try:
                text = (self._numa_root / f"node{node}" / "cpulist").read_text()
                cpus |= _cpu_list(text)
            except (OSError, ValueError):
                return None
        cpus &= os.sched_getaffinity(0)
        if not cpus:
            return None
        chosen = frozenset(cpus)
        return lambda: os.sched_setaffinity(0, chosen)

    def _task_env(self, request: LaunchRequest) -> dict[str, str]:
        hidden = self._hidden_env
        env = {k: v for k, v in os.environ.items() if k not in hidden}
        env.update(request.env)  # what the task asks for, even if ANT hides its own value
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in request.gpu_ids)
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        env[TASK_ID_ENV] = request.task_id
        env[SERVER_ID_ENV] = self._server_id
        env["PYTHONUNBUFFERED"] = "1"
        return env

    @staticmethod
    def _expand_home(path: str, env: dict[str, str]) -> str:
        # As the task's shell will: `~` and `~/...` with the task's HOME.
        if (path == "~" or path.startswith("~/")) and env.get("HOME"):
            return env["HOME"] + path[1:]
        return os.path.expanduser(path)

    def _workdir(self, request: LaunchRequest, env: dict[str, str]) -> str:
        if not request.workdir:
            return request.cwd
        return os.path.join(request.cwd, self._expand_home(request.workdir, env))

    def _check_workdir(self, request: LaunchRequest, env: dict[str, str]) -> None:
        if not request.workdir:
            return
        path = self._workdir(request, env)
        try:
            if os.path.isdir(path):
                return
            exists = os.path.lexists(path)
        except ValueError:  # a NUL byte
            exists = False
        what = "is not a directory" if exists else "does not exist"
        raise LaunchError(f"working directory {path} {what}")

    def _check_conda(self, request: LaunchRequest, env: dict[str, str]) -> None:
        conda = request.conda
        if not conda:
            return
        try:
            if "/" in conda:  # a path: the command runs it after `cd ant_wd`
                path = os.path.join(self._workdir(request, env), self._expand_home(conda, env))
                found = os.path.isfile(path) and os.access(path, os.X_OK)
            else:
                found = shutil.which(conda, path=env.get("PATH", os.defpath)) is not None
        except ValueError:
            found = False
        if not found:
            raise LaunchError(f"conda executable {conda!r} not found (ant_conda_env needs it)")

    def _launch(
        self, request: LaunchRequest, env: dict[str, str], log_path: Path, exit_path: Path
    ) -> subprocess.Popen[bytes]:
        """Open the log and exit file safely, start the wrapper; close every fd either way."""
        fds: list[int] = []
        what, path = "cannot use log directory", log_path.parent
        try:
            log_dir = _open_dir(path, self._dir_mode)
            fds.append(log_dir)
            disk = os.fstatvfs(log_dir)
            if disk.f_bavail * disk.f_frsize < MIN_FREE_BYTES:
                raise LaunchError(
                    f"no space left for the log in {path} "
                    f"({disk.f_bavail * disk.f_frsize} bytes free)"
                )
            what, path = "cannot open log file", log_path
            self._spares.claim(log_dir, path.name)
            log_fd = _open_file(log_dir, path.name, self._file_mode, append=True)
            fds.append(log_fd)
            exit_dir = log_dir
            if exit_path.parent != log_path.parent:
                what, path = "cannot use directory", exit_path.parent
                exit_dir = _open_dir(path, self._dir_mode)
                fds.append(exit_dir)
            what, path = "cannot create exit file", exit_path
            self._spares.claim(exit_dir, path.name)
            exit_fd = _open_file(exit_dir, path.name, self._file_mode, append=False)
            fds.append(exit_fd)
            what, path = "cannot start task", Path(request.cwd)
            pin = self._pinning(request.numa_nodes)
            plain = plain_command(request.command, env, request.cwd) if self._dash else None
            if plain is not None and self._dash is not None:
                return subprocess.Popen(
                    [self._dash, "-c", WRAPPER_PLAIN, "ant-task", request.command],
                    cwd=request.cwd,
                    env=plain.env,
                    stdin=exit_fd,  # the wrapper's; the command gets /dev/null
                    stdout=log_fd,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                    preexec_fn=pin,
                )
            wrapper = WRAPPER_SIMPLE if is_simple_command(request.command) else WRAPPER
            return subprocess.Popen(
                [self._bash, "-c", wrapper, "ant-task", request.command, str(exit_fd)],
                cwd=request.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                pass_fds=(exit_fd,),
                preexec_fn=pin,
            )
        except _Refused as exc:
            raise LaunchError(f"{what} {path}: {exc}") from None
        except OSError as exc:
            if what == "cannot start task":
                if exc.filename == request.cwd:
                    raise LaunchError(
                        f"cannot start task in directory {request.cwd}: {exc.strerror}"
                    ) from None
                raise LaunchError(f"cannot start task (shell): {exc.strerror}") from None
            raise LaunchError(f"{what} {path}: {_reason(exc, path)}") from None
        except ValueError as exc:  # a NUL byte in the command, a variable or a path
            raise LaunchError(f"{what}: {exc}") from None
        finally:
            for fd in fds:
                os.close(fd)

    def adopt(self, task_id: str, pid: int, start_time: float, exit_path: Path) -> bool:
        """Watch a task started before ANT restarted, if it is that very process still."""
        loop = self._get_loop()
        current = self._tasks.get(task_id)
        if current is not None:
            if not current.start_time and current.pid == pid:
                current.start_time = process_start_time(pid) or 0.0
            return not current.reported and (
                current.pid == pid and abs(current.start_time - start_time) <= START_TIME_TOLERANCE
            )
        # Opened before the identity check: the fd then pins the process that we check, so the
        # pid cannot be recycled between the check and the watch.
        pidfd = self._pidfd(pid)
        if not processes.is_same_process(pid, start_time):
            if pidfd is not None:
                os.close(pidfd)
            return False
        task = _Task(task_id, pid, start_time, exit_path, None, by_scan=True)
        self._tasks[task_id] = task
        self._watch_wrapper(task, pidfd, loop)
        return True

    def scan(self) -> list[FoundProcess]:
        """Every live process carrying this server's marker (reads /proc/*/environ: a few ms)."""
        return processes.scan(self._server_id)

    def watch_strays(self, task_id: str, pids: list[int]) -> int:
        """Track processes of a task whose wrapper is gone, as found by scan() after a restart.

        Only pids that still carry this server's marker for that task are taken. Returns how
        many of the task's processes are alive; when that is more than 0 the gone callback
        follows once none is left.
        """
        loop = self._get_loop()
        task = self._tasks.get(task_id)
        if task is None:
            task = _Task(task_id, 0, 0.0, None, None, by_scan=True, ended=True, reported=True)
            task.session_pinned = False
            task.wrapper_gone.set()
        for pid in pids:
            st = processes.read_stat(pid)
            environ = processes.read_environ(pid)
            if (
                st is None
                or st.zombie
                or pid in task.strays
                or pid == task.pid
                or not environ
                or processes.marker(environ, self._server_id) != task_id
            ):
                continue
            task.seen.add(st.identity)
            self._add_stray(task, st, loop)
        if task_id not in self._tasks:
            if not task.strays:
                return 0
            self._tasks[task_id] = task
        if task.reported:
            task.gone_due = True
        task.last_found = self._walk(task, list(task.strays))  # no scan: the caller just did
        return len(task.last_found)

    def lingering(self, task_id: str) -> int:
        """Live processes of the ended task: looked for again where that is cheap (the
        subreaper), else those found at the last look (a scan) that are still alive."""
        task = self._tasks.get(task_id)
        if task is None or not task.reported:
            return 0
        if not task.by_scan:
            return len(self._find(task))
        alive = 0
        for proc in task.last_found:
            now = processes.read_stat(proc.pid)
            if now is not None and not now.zombie and now.start_ticks == proc.start_ticks:
                alive += 1
        return alive

    # ------------------------------------------------------------------ watching

    def _pidfd(self, pid: int) -> int | None:
        return processes.open_pidfd(pid) if self._use_pidfd else None

    def _watch_wrapper(
        self, task: _Task, pidfd: int | None, loop: asyncio.AbstractEventLoop
    ) -> None:
        if pidfd is None:
            self._ensure_poller(loop)
            return
        task.pidfd = pidfd
        loop.add_reader(pidfd, self._on_wrapper_end, task)

    def _close_pidfd(self, pidfd: int | None) -> None:
        if pidfd is None:
            return
        try:
            self._get_loop().remove_reader(pidfd)
        except RuntimeError:  # the loop is already closed
            pass
        os.close(pidfd)

    def _ensure_poller(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._poller is None or self._poller.done():
            self._poller = loop.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            busy = False
            for task in list(self._tasks.values()):
                if task.pidfd is None and not task.ended:
                    busy = True
                    if self._wrapper_exited(task):
                        self._on_wrapper_end(task)
                for stray in list(task.strays.values()):
                    if stray.pidfd is None:
                        busy = True
                        self._on_stray_end(task, stray)
            if not busy:
                return
            await asyncio.sleep(POLL_SECONDS)

    def _wrapper_exited(self, task: _Task) -> bool:
        if task.popen is None:
            return not processes.is_same_process(task.pid, task.start_time)
        if task.popen.returncode is not None:
            return True
        try:  # WNOWAIT: it stays a zombie (its pid, the session id, stays ours) until reaped
            return os.waitid(os.P_PID, task.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def _on_wrapper_end(self, task: _Task) -> None:
        """The wrapper has ended: find what it left, reap it, report unless a kill will."""
        if task.ended or not self._wrapper_exited(task):
            return  # done already, or a spurious wake-up
        look = not task.report_deferred  # a kill looks on its own
        found: list[ProcStat] = []
        if look and not task.by_scan:
            # Before the wrapper is reaped: processes in its session can be no one else's yet.
            found = self._find(task)
        code: int | None = None
        if task.popen is not None:
            status = task.popen.poll()  # waitpid(pid, WNOHANG) on our own child: reaps it
            if status is not None:
                code = 128 - status if status < 0 else status  # killed by signal N -> 128 + N
        recorded = read_exit_file(task.exit_path) if task.exit_path is not None else None
        if recorded is not None:
            code = recorded  # the command's own code, even if the wrapper was SIGKILLed after
        task.ended = True
        task.exit_code = code
        self._wrappers.pop(task.pid, None)
        self._close_pidfd(task.pidfd)
        task.pidfd = None
        task.wrapper_gone.set()
        task.changed.set()
        if look and task.by_scan:
            # Just after the reap: a member of the wrapper's group, if any is left, still
            # holds its number, so the group is the task's (the pid is not handed out again
            # within microseconds). From now on only markers and lineage tell.
            found = self._find(task)
        task.session_pinned = False
        if look:
            self._report_exit(task, len(found))

    def _report_exit(self, task: _Task, lingering: int) -> None:
        if not self._is_current(task) or task.reported:
            return
        task.reported = True
        if lingering:
            task.gone_due = True
        else:
            self._forget(task)
        self._callback(ExitInfo(task.task_id, task.exit_code, task.kill_requested, lingering))

    def _report_gone(self, task: _Task) -> None:
        if not self._is_current(task):
            return
        self._forget(task)
        if task.gone_due:
            self._gone_callback(task.task_id)

    def _forget(self, task: _Task) -> None:
        if self._is_current(task):
            del self._tasks[task.task_id]
        for stray in list(task.strays.values()):
            self._drop_stray(task, stray)
        task.seen.clear()

    def _is_current(self, task: _Task) -> bool:
        return self._tasks.get(task.task_id) is task

    # ------------------------------------------------------------------ strays

    def _add_stray(self, task: _Task, st: ProcStat, loop: asyncio.AbstractEventLoop) -> None:
        if st.pid in task.strays:
            return
        stray = _Stray(st.pid, st.start_ticks, child=st.ppid == self._pid)
        pidfd = self._pidfd(st.pid)
        if pidfd is not None and not stray.child:
            # Not our child, so its pid may be reused any time: check that the pidfd holds it.
            now = processes.read_stat(st.pid)
            if now is None or now.zombie or now.start_ticks != st.start_ticks:
                os.close(pidfd)
                return
        task.strays[st.pid] = stray
        if stray.child:
            self._stray_pids[st.pid] = task
        if pidfd is None:
            self._ensure_poller(loop)
        else:
            stray.pidfd = pidfd
            loop.add_reader(pidfd, self._on_stray_end, task, stray)

    def _drop_stray(self, task: _Task, stray: _Stray) -> None:
        self._close_pidfd(stray.pidfd)
        stray.pidfd = None
        task.strays.pop(stray.pid, None)
        if self._stray_pids.get(stray.pid) is task:
            del self._stray_pids[stray.pid]

    def _stray_ended(self, stray: _Stray) -> bool:
        """Whether it has ended; reaps it if it is our child."""
        if stray.child:
            try:
                pid, _ = os.waitpid(stray.pid, os.WNOHANG)
            except ChildProcessError:
                return True
            return pid != 0
        now = processes.read_stat(stray.pid)
        return now is None or now.zombie or now.start_ticks != stray.start_ticks

    def _on_stray_end(self, task: _Task, stray: _Stray) -> None:
        if task.strays.get(stray.pid) is not stray or not self._stray_ended(stray):
            return
        self._drop_stray(task, stray)
        task.changed.set()
        # Its children were just re-parented: look again, once for all that end together.
        self._schedule_recheck(task)

    def _schedule_recheck(self, task: _Task) -> None:
        if not task.recheck_due:
            task.recheck_due = True
            self._get_loop().call_soon(self._recheck, task)

    def _recheck(self, task: _Task) -> None:
        task.recheck_due = False
        if not self._is_current(task) or (task.killer is not None and not task.killer.done()):
            return  # forgotten, or a kill is looking on its own
        found = self._find(task)
        if task.reported and not found:
            self._report_gone(task)

    # ------------------------------------------------------------------ finding

    def _find(
        self, task: _Task, *, with_wrapper: bool = False, scan: bool = False
    ) -> list[ProcStat]:
        """The task's live processes other than its wrapper (with_wrapper: also those still
        in the wrapper's tree). New strays are watched from here on."""
        if task.by_scan or scan:
            found = self._find_by_scan(task, with_wrapper)
        else:
            self._take_children()
            found = self._find_in_tree(task, with_wrapper)
        task.last_found = found
        return found

    def _attribute(self, st: ProcStat, task_id: str | None) -> _Task | None:
        """Which tracked task a process belongs to: by marker, by identity seen before, or by
        the session of a wrapper not yet reaped (a wrapper still running comes first)."""
        if task_id is not None:
            return self._tasks.get(task_id)
        by_session = self._wrappers.get(st.sid)
        if by_session is not None and by_session.session_pinned:
            return by_session
        for task in self._tasks.values():
            if st.identity in task.seen:
                return task
        return None

    def _take_children(self) -> None:
        """Subreaper: sort ANT's children that are not wrappers into the tasks' strays."""
        loop = self._get_loop()
        deadline = time.monotonic() + processes.EXEC_SETTLE_SECONDS
        for pid in processes.children(self._pid):
            if pid in self._wrappers or pid in self._stray_pids:
                continue
            st = processes.read_stat(pid)
            if st is None or st.ppid != self._pid:
                continue
            if st.zombie:
                self._reap_if_orphan(st)  # one that died before anyone looked
                continue
            if st.identity in self._foreign:
                continue
            # Caught in the middle of an execve its environment reads as empty: wait a moment.
            environ = processes.read_environ_settled(pid, deadline)
            task_id = processes.marker(environ, self._server_id) if environ else None
            task = self._attribute(st, task_id)
            if task is None:
                if environ or environ is None:  # else: still undecided, looked at next time
                    self._foreign.add(st.identity)
                continue
            task.seen.add(st.identity)
            self._add_stray(task, st, loop)

    def _find_in_tree(self, task: _Task, with_wrapper: bool) -> list[ProcStat]:
        """The task's strays and their descendants (and the wrapper's), walking /proc children."""
        todo: list[int] = []
        if with_wrapper and not task.ended:
            todo.extend(processes.children(task.pid))
        for stray in list(task.strays.values()):
            st = processes.read_stat(stray.pid)
            if st is None or st.zombie or st.start_ticks != stray.start_ticks:
                continue  # ending: its pidfd reports it
            todo.append(stray.pid)
        return self._walk(task, todo)

    def _walk(self, task: _Task, todo: list[int]) -> list[ProcStat]:
        found: list[ProcStat] = []
        visited: set[int] = {task.pid, self._pid}
        while todo:
            pid = todo.pop()
            if pid in visited:
                continue
            visited.add(pid)
            st = processes.read_stat(pid)
            if st is None or st.zombie:
                continue
            found.append(st)
            task.seen.add(st.identity)
            todo.extend(processes.children(pid))
        if len(task.seen) > SEEN_LIMIT:  # keep it to the living
            task.seen = {
                (pid, ticks)
                for pid, ticks in task.seen
                if (now := processes.read_stat(pid)) is not None
                and not now.zombie
                and now.start_ticks == ticks
            }
        return found

    def _find_by_scan(self, task: _Task, with_wrapper: bool) -> list[ProcStat]:
        """The task's processes by marker (scanning /proc), by identity seen before and, up to
        the wrapper's end (while its group number cannot be anyone else's), by its process
        group; with their descendants. Those at the top of their tree are watched as strays."""
        loop = self._get_loop()
        pinned = task.session_pinned and task.pid > 1
        group = task.pid if pinned and _group_exists(task.pid) else None  # else: no stat sweep
        roots: list[int] = []
        for st in processes.sweep(self._server_id, stat_all=group is not None):
            if st.pid in (task.pid, self._pid):
                continue
            if st.zombie:
                if st.ppid == self._pid and self._subreaper:
                    self._reap_if_orphan(st)
                continue
            if st.task_id == task.task_id or (st.task_id is None and st.pgid == group):
                roots.append(st.pid)
        for pid, ticks in list(task.seen):  # found before, may have lost the marker
            now = processes.read_stat(pid)
            if now is None or now.zombie or now.start_ticks != ticks:
                task.seen.discard((pid, ticks))
            else:
                roots.append(pid)
        if with_wrapper and not task.ended:
            roots.extend(processes.children(task.pid))
        found = self._walk(task, roots)
        pids = {st.pid for st in found}
        for st in found:
            if st.ppid not in pids and (task.ended or st.ppid != task.pid):
                self._add_stray(task, st, loop)  # the top of a tree: when it ends, look again
        return found

    def _reap_if_orphan(self, st: ProcStat) -> None:
        """A dead child of ANT outside ANT's session that is no wrapper: an orphan of a task
        (ANT starts nothing else in a session of its own), so no Popen waits for it."""
        if st.sid != self._sid and st.pid not in self._wrappers:
            try:
                os.waitpid(st.pid, os.WNOHANG)
            except ChildProcessError:
                pass
            self._foreign.discard(st.identity)

    # ------------------------------------------------------------------ kill

    async def kill(self, task_id: str, grace_seconds: float) -> None:
        """SIGTERM to every process of the task; SIGKILL whatever is left after the grace.

        Returns once the exit has been reported (or the gone call made, for a task whose
        wrapper had already ended), or, for a process stuck in the kernel, after a last wait:
        the report then comes whenever it does end. A kill carries on to the end even if the
        caller is cancelled; a second kill() of the same task joins the first.
        """
        task = self._tasks.get(task_id)
        if task is None:
            return
        if task.killer is None or task.killer.done():
            task.kill_requested = True
            task.report_deferred = True
            task.killer = self._get_loop().create_task(self._kill(task, grace_seconds))
        await asyncio.shield(task.killer)

    def _signal_all(self, task: _Task, sig: int, done: set[object]) -> bool:
        """Send `sig` to every process of the task not sent it yet (SIGKILL: to all again), with
        SIGCONT after SIGTERM (a stopped process only sees it once continued). Whether anything
        of the task is still alive."""
        found = self._find(task, with_wrapper=True)
        groups: set[int] = set()
        if not task.ended and (
            task.popen is not None or processes.is_same_process(task.pid, task.start_time)
        ):
            groups.add(task.pid)
        groups.update(st.pgid for st in found)
        groups -= {0, 1, os.getpgrp()}
        for pgid in groups:
            if sig == signal.SIGKILL or pgid not in done:
                done.add(pgid)
                processes.signal_group(pgid, sig)
                if sig == signal.SIGTERM:
                    processes.signal_group(pgid, signal.SIGCONT)
                done.update((st.identity, st.image) for st in found if st.pgid == pgid)
        for st in found:
            if sig == signal.SIGKILL and st.pgid in groups:
                continue  # the group signal reached it
            # One forked after its group was signalled (by a handler, say) gets its own, and so
            # does one that exec'd since: a shell's child between fork and exec still runs the
            # shell's trap, which takes the SIGTERM away from the command it then becomes.
            if sig == signal.SIGKILL or (st.identity, st.image) not in done:
                done.add((st.identity, st.image))
                processes.signal_process(st.pid, st.start_ticks, sig)
                if sig == signal.SIGTERM:
                    processes.signal_process(st.pid, st.start_ticks, signal.SIGCONT)
        return bool(found) or not task.ended

    async def _kill(self, task: _Task, grace_seconds: float) -> None:
        done: set[object] = set()
        checked = task.by_scan  # a scan as a last self-check, unless scans found them anyway
        alive = True
        try:
            alive = await self._phase(task, signal.SIGTERM, grace_seconds, done)
            if not alive and not checked:
                checked, alive = True, self._self_check(task)
            if alive:
                alive = await self._phase(task, signal.SIGKILL, AFTER_SIGKILL_SECONDS, done)
                if not alive and not checked:
                    checked, alive = True, self._self_check(task)
                    if alive:
                        alive = await self._phase(task, signal.SIGKILL, AFTER_SIGKILL_SECONDS, done)
        finally:
            task.report_deferred = False
            if self._is_current(task):
                left = len(task.last_found) if alive else 0
                if not task.reported:
                    if task.ended:
                        self._report_exit(task, left)
                    # else: the wrapper is stuck in the kernel; its end reports
                elif not left:
                    self._report_gone(task)
                else:  # still lingering: the gone call comes when the watched ones end
                    self._schedule_recheck(task)  # (one may have ended while the kill looked)

    def _self_check(self, task: _Task) -> bool:
        """Whether a /proc scan finds any of the task's processes the tree did not; if so the
        task is looked after by scanning from now on."""
        if not self._is_current(task) or not self._find(task, scan=True):
            return False
        task.by_scan = True
        return True

    async def _phase(self, task: _Task, sig: int, seconds: float, done: set[object]) -> bool:
        alive = self._signal_all(task, sig, done)
        return await self._settle(
            task, alive, self._get_loop().time() + max(0.0, seconds), sig, done
        )

    async def _settle(
        self, task: _Task, alive: bool, deadline: float, sig: int, done: set[object]
    ) -> bool:
        """Until nothing of the task is alive (False) or the deadline (True), looking again
        whenever one of its processes ends or every little while, signalling newcomers."""
        loop = self._get_loop()
        interval = KILL_SCAN_SECONDS if task.by_scan else KILL_POLL_SECONDS
        while alive and self._is_current(task):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return True
            task.changed.clear()
            try:
                await asyncio.wait_for(task.changed.wait(), min(interval, remaining))
            except asyncio.TimeoutError:
                pass
            if not self._is_current(task):
                break
            alive = self._signal_all(task, sig, done)
        return False

    async def terminate_all(self, grace_seconds: float) -> None:
        """kill() every task, running or with lingering processes."""
        await asyncio.gather(*(self.kill(t, grace_seconds) for t in list(self._tasks)))

    # ------------------------------------------------------------------ misc

    def running_ids(self) -> set[str]:
        return {task_id for task_id, t in self._tasks.items() if not t.reported}

    def pids(self) -> dict[str, int]:
        return {task_id: t.pid for task_id, t in self._tasks.items() if not t.reported}

    def close(self) -> None:
        """Stop watching. Never signals a task: they keep running and are re-adopted later."""
        for task in self._tasks.values():
            self._close_pidfd(task.pidfd)
            task.pidfd = None
            for stray in list(task.strays.values()):
                self._drop_stray(task, stray)
            task.wrapper_gone.set()  # lets a kill in progress return
            task.changed.set()
        self._tasks.clear()
        self._wrappers.clear()
        self._stray_pids.clear()
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        if self._subreaper:
            processes.set_child_subreaper(False)
            self._subreaper = False
        self._spares.close()


def _group_exists(pgid: int) -> bool:
    """Whether any process (zombies too) is in the group: one syscall."""
    if pgid <= 1:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cuda_ids(value: str | None) -> list[int]:
    return [int(part) for part in (value or "").split(",") if part.strip().isdigit()]


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _cpu_list(text: str) -> set[int]:
    """A kernel CPU list ('0-3,8-11') as a set; ValueError if it is not one."""
    cpus: set[int] = set()
    for part in filter(None, text.strip().split(",")):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus
