"""Processes that escape a task (background, setsid, double fork) stay the task's: they are
counted when it ends, reported gone when they die, and killed with it. With ANT as the subreaper
of its tasks (cheap: ANT's children) and without (scanning /proc for the task marker).

Real processes, no mocks. Each escaped process writes its own pid to a file; every test kills
what it started in a finally block (and reaps it if it became the test process's child)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shlex
import signal
import sys
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from ant_scheduler.executors import processes
from ant_scheduler.executors.base import ExitInfo, LaunchError
from ant_scheduler.executors.local import LocalExecutor
from tests.unit.executor_requests import Req, launch, start_orphan

T = TypeVar("T")


@dataclasses.dataclass
class Ant:
    ex: LocalExecutor
    exits: asyncio.Queue[ExitInfo]
    gone: asyncio.Queue[str]
    tmp: Path
    server_id: str

    def request(self, task_id: str, command: str, gpus: tuple[int, ...] = ()) -> Req:
        log = self.tmp / "logs" / f"{task_id}.log"
        return Req(task_id, command, {}, gpus, str(self.tmp), log, log.with_suffix(".exit"))


class Leftovers:
    """Pids the test started outside ANT's control: SIGKILLed (and reaped) at the end."""

    def __init__(self) -> None:
        self.pids: list[int] = []

    def add(self, pid: int) -> int:
        self.pids.append(pid)
        return pid

    def clean(self) -> None:
        for pid in self.pids:
            stat = processes.read_stat(pid)
            if stat is None:
                continue
            if not stat.zombie:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if stat.ppid == os.getpid():
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass


@pytest.fixture
def leftovers() -> Iterator[Leftovers]:
    left = Leftovers()
    try:
        yield left
    finally:
        left.clean()


@pytest.fixture
def subreaper_reset() -> Iterator[None]:
    """The subreaper is only ever on inside a test: off again afterwards, whatever happened."""
    try:
        yield
    finally:
        processes.set_child_subreaper(False)
        assert not processes.is_child_subreaper()


@pytest.fixture(params=["subreaper", "scan"])
def mode(request: pytest.FixtureRequest, subreaper_reset: None) -> str:
    """Both ways of finding a task's processes."""
    return str(request.param)


def run(
    tmp: Path,
    scenario: Callable[[Ant], Awaitable[T]],
    *,
    subreaper: bool = False,
    server_id: str | None = None,
    use_pidfd: bool = True,
) -> T:
    async def main() -> T:
        sid = server_id or f"test-{uuid.uuid4().hex[:8]}"  # no test sees another's processes
        ex = LocalExecutor(
            asyncio.get_running_loop(),
            use_pidfd=use_pidfd,
            server_id=sid,
            become_subreaper=subreaper,
        )
        assert ex.subreaper == subreaper == processes.is_child_subreaper()
        ant = Ant(ex, asyncio.Queue(), asyncio.Queue(), tmp, sid)
        ex.set_exit_callback(ant.exits.put_nowait)
        ex.set_gone_callback(ant.gone.put_nowait)
        try:
            return await asyncio.wait_for(scenario(ant), 30)
        finally:
            await ex.terminate_all(0)  # whatever a failed test left running or lingering
            ex.close()
            kill_marked(sid)  # and, not trusting the code under test, by the marker
            assert not processes.is_child_subreaper()  # close() hands the orphans back to init

    return asyncio.run(main())


def kill_marked(server_id: str) -> None:
    """SIGKILL every process marked with this server id until none is left (and reap those
    that were the test process's children): read straight from /proc, not trusting the code
    under test."""
    needle = f"ANT_SERVER_ID={server_id}\0".encode()
    killed: set[int] = set()
    for _ in range(50):
        hit = False
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    marked = needle in f.read() + b"\0"
                if marked:
                    os.kill(int(name), signal.SIGKILL)
                    killed.add(int(name))
                    hit = True
            except OSError:
                continue
        if not hit:
            break
        time.sleep(0.02)
    for pid in killed:
        stat = processes.read_stat(pid)
        if stat is not None and stat.ppid == os.getpid():
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def gone(pid: int, start_ticks: int | None = None) -> bool:
    stat = processes.read_stat(pid)
    return (
        stat is None or stat.zombie or (start_ticks is not None and stat.start_ticks != start_ticks)
    )


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.02)


def written(path: Path, lines: int = 1) -> Callable[[], bool]:
    """Whether `lines` whole lines are in the file (each written by one write)."""
    return lambda: path.exists() and path.read_text().count("\n") == lines


async def read_pid(path: Path, leftovers: Leftovers) -> int:
    await until(written(path))
    return leftovers.add(int(path.read_text()))


def escape(case: str, pid_file: Path, *, ignore_term: bool = False) -> str:
    """A command that leaves a `sleep` behind, out of the task's reach as `case` says; the
    process writes its pid first (one write, no extra process: it is the task's only one left)."""
    trap = 'trap "" TERM; ' if ignore_term else ""
    inner = f"{trap}echo $$ > {pid_file}; exec sleep 300"
    if case == "background":  # same process group and session, orphaned when the task ends
        return f"sh -c '{inner}' & echo started"
    if case == "setsid":  # its own session and group
        return f"setsid sh -c '{inner}' &"
    assert case == "double-fork"  # fork, setsid, fork, the middle one exits
    return f"{sys.executable} -c {shlex.quote(DOUBLE_FORK)} {pid_file} {int(ignore_term)}"


DOUBLE_FORK = textwrap.dedent(
    """
    import os, signal, sys
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            if sys.argv[2] == "1":
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            with open(sys.argv[1], "w") as f:
                f.write(str(os.getpid()) + chr(10))
            os.execvp("sleep", ["sleep", "300"])
        os._exit(0)
    os.wait()
    """
)


CASES = ["background", "setsid", "double-fork"]


@pytest.mark.parametrize("case", CASES)
def test_escaped_process_lingers_until_it_dies(
    tmp_path: Path, case: str, mode: str, leftovers: Leftovers
) -> None:
    pid_file = tmp_path / "escaped.pid"

    async def scenario(ant: Ant) -> None:
        launch(ant.ex, ant.request("t", escape(case, pid_file)))
        info = await ant.exits.get()
        assert info == ExitInfo("t", 0, killed=False, lingering=1)
        pid = await read_pid(pid_file, leftovers)
        ticks = processes.read_stat(pid).start_ticks  # type: ignore[union-attr]
        assert ant.ex.lingering("t") == 1
        assert ant.ex.running_ids() == set() and ant.ex.pids() == {}
        found = [p for p in ant.ex.scan() if p.task_id == "t"]
        assert [p.pid for p in found] == [pid]  # the marker went with it
        await asyncio.sleep(0.1)
        assert ant.gone.empty()  # not while it lives
        os.kill(pid, signal.SIGKILL)
        assert await ant.gone.get() == "t"
        assert gone(pid, ticks) and ant.ex.lingering("t") == 0
        if mode == "subreaper":  # it was ANT's child: reaped, not left a zombie
            assert processes.read_stat(pid) is None or (
                processes.read_stat(pid).start_ticks != ticks  # type: ignore[union-attr]
            )
        await asyncio.sleep(0.1)
        assert ant.gone.empty() and ant.exits.empty()

    run(tmp_path, scenario, subreaper=mode == "subreaper")


@pytest.mark.parametrize("case", CASES)
def test_kill_of_a_running_task_ends_its_escaped_processes(
    tmp_path: Path, case: str, mode: str, leftovers: Leftovers
) -> None:
    pid_file = tmp_path / "escaped.pid"
    stubborn = case == "setsid"  # this one ignores SIGTERM: SIGKILL after the grace

    async def scenario(ant: Ant) -> None:
        wrapper = launch(
            ant.ex, ant.request("t", escape(case, pid_file, ignore_term=stubborn) + "\nsleep 1000")
        ).pid
        pid = await read_pid(pid_file, leftovers)
        await ant.ex.kill("t", 0.3 if stubborn else 10)
        # Reported before kill() returned, and only once all of it was gone.
        assert ant.exits.get_nowait() == ExitInfo("t", 128 + signal.SIGTERM, True, 0)
        assert gone(pid) and gone(wrapper)
        assert ant.ex.lingering("t") == 0 and ant.ex.running_ids() == set()
        assert not [p for p in ant.ex.scan() if p.task_id == "t"]
        await asyncio.sleep(0.1)
        assert ant.gone.empty() and ant.exits.empty()  # lingering 0: no gone call

    run(tmp_path, scenario, subreaper=mode == "subreaper")


def test_kill_sends_sigterm_to_processes_forked_after_it(
    tmp_path: Path, mode: str, leftovers: Leftovers
) -> None:
    """Regression (CI): a shell that takes the SIGTERM just before forking its command, or a
    handler that starts a process, makes a process that missed the group's SIGTERM. It gets
    its own, so the task ends gracefully instead of by SIGKILL once the grace has run out."""
    started = tmp_path / "started"
    # On SIGTERM the handler runs a new sleep (in the signalled group) and waits for it.
    cmd = f"trap 'sleep 1000; exit 3' TERM; touch {started}; while :; do sleep 0.05; done"

    async def scenario(ant: Ant) -> None:
        launch(ant.ex, ant.request("t", cmd))
        while not started.exists():
            await asyncio.sleep(0.01)
        await ant.ex.kill("t", 20)  # SIGKILL only after 20 s: would fail with 137
        assert ant.exits.get_nowait() == ExitInfo("t", 3, True, 0)
        assert not [p for p in ant.ex.scan() if p.task_id == "t"]

    run(tmp_path, scenario, subreaper=mode == "subreaper")


def test_kill_right_after_the_start_reaches_the_command(tmp_path: Path, mode: str) -> None:
    """Regression: a SIGTERM that reaches the wrapper's child between its fork and its exec runs
    the wrapper's trap there and is gone; the command it becomes must get one of its own. (One
    in four kills right after the start missed it with the dash wrapper, rarely with bash.)"""

    async def scenario(ant: Ant) -> None:
        for i in range(30):
            for command in ("sleep 1000", "sleep 1000 > /dev/null"):  # dash, bash
                launch(ant.ex, ant.request(f"t{i}", command))
                await ant.ex.kill(f"t{i}", 2)  # missed: SIGKILL after 2 s, exit code 137
                assert ant.exits.get_nowait() == ExitInfo(f"t{i}", 128 + signal.SIGTERM, True)
                await asyncio.sleep(0)

    run(tmp_path, scenario, subreaper=mode == "subreaper")


@pytest.mark.parametrize("case", CASES)
def test_kill_of_an_ended_task_ends_what_it_left(
    tmp_path: Path, case: str, mode: str, leftovers: Leftovers
) -> None:
    pid_file = tmp_path / "escaped.pid"

    async def scenario(ant: Ant) -> None:
        launch(ant.ex, ant.request("t", escape(case, pid_file, ignore_term=True)))
        assert (await ant.exits.get()).lingering == 1
        pid = await read_pid(pid_file, leftovers)
        await ant.ex.kill("t", 0.3)
        assert ant.gone.get_nowait() == "t"  # the gone call is the kill's report
        assert gone(pid) and ant.ex.lingering("t") == 0
        await ant.ex.kill("t", 1)  # nothing left: a no-op
        await asyncio.sleep(0.1)
        assert ant.gone.empty() and ant.exits.empty()

    run(tmp_path, scenario, subreaper=mode == "subreaper")


def test_orphans_of_a_dying_stray_are_found(
    tmp_path: Path, mode: str, leftovers: Leftovers
) -> None:
    """A stray's own children are re-parented when it dies (to ANT with the subreaper): the
    task keeps lingering until they are gone too."""
    pids = tmp_path / "pids"
    go = tmp_path / "go"
    # A setsid'd parent with two children, one in a session of its own; the parent ends on `go`.
    cmd = (
        "setsid sh -c '"
        f"sleep 300 & echo $! >> {pids}; setsid sleep 300 & echo $! >> {pids}; echo $$ >> {pids}; "
        f"while [ ! -e {go} ]; do sleep 0.02; done' &"
    )

    async def scenario(ant: Ant) -> None:
        launch(ant.ex, ant.request("t", cmd))
        info = await ant.exits.get()
        assert info.lingering >= 1  # the parent at least (its children may not exist yet)
        await until(written(pids, 3))
        child1, child2, parent = (leftovers.add(int(p)) for p in pids.read_text().split())
        go.touch()
        await until(lambda: gone(parent))
        await asyncio.sleep(0.2)
        assert ant.gone.empty()
        assert ant.ex.lingering("t") == 2
        os.kill(child1, signal.SIGKILL)
        await asyncio.sleep(0.2)
        assert ant.gone.empty()  # one is still there
        os.kill(child2, signal.SIGKILL)
        assert await ant.gone.get() == "t"

    run(tmp_path, scenario, subreaper=mode == "subreaper")


def test_strays_are_watched_by_polling_without_pidfds(
    tmp_path: Path, mode: str, leftovers: Leftovers
) -> None:
    pid_file = tmp_path / "escaped.pid"

    async def scenario(ant: Ant) -> None:
        launch(ant.ex, ant.request("t", escape("setsid", pid_file)))
        assert (await ant.exits.get()).lingering == 1
        pid = await read_pid(pid_file, leftovers)
        os.kill(pid, signal.SIGKILL)
        assert await ant.gone.get() == "t"
        assert gone(pid)

    run(tmp_path, scenario, subreaper=mode == "subreaper", use_pidfd=False)


def test_subreaper_reaps_orphans_that_died_unseen(
    tmp_path: Path, leftovers: Leftovers, subreaper_reset: None
) -> None:
    """An orphan that ends while its task still runs is ANT's zombie child: reaped at the next
    look (any task's end), without waitpid(-1)."""
    pid_file = tmp_path / "short.pid"
    cmd = f"( setsid sh -c 'echo $$ > {pid_file}' & ); sleep 1000"  # the ( ) orphans it

    async def scenario(ant: Ant) -> None:
        launch(ant.ex, ant.request("long", cmd))
        pid = await read_pid(pid_file, leftovers)
        await until(lambda: gone(pid))
        stat = processes.read_stat(pid)
        assert stat is not None and stat.zombie and stat.ppid == os.getpid()
        launch(ant.ex, ant.request("short", "true"))
        assert await ant.exits.get() == ExitInfo("short", 0, False, 0)
        assert processes.read_stat(pid) is None  # reaped
        await ant.ex.kill("long", 5)
        assert (await ant.exits.get()).killed

    run(tmp_path, scenario, subreaper=True)


def test_scan_finds_this_servers_processes_only(tmp_path: Path) -> None:
    async def scenario(ant: Ant) -> None:
        other = LocalExecutor(asyncio.get_running_loop(), server_id=ant.server_id + "-other")
        other_exits: asyncio.Queue[ExitInfo] = asyncio.Queue()
        other.set_exit_callback(other_exits.put_nowait)
        try:
            mine = launch(ant.ex, ant.request("mine", "sleep 1000", (0, 2)))
            theirs = launch(other, dataclasses.replace(ant.request("theirs", "sleep 1000")))
            # The wrapper and sleep (a simple command runs without a subshell in between).
            await until(lambda: len([p for p in ant.ex.scan() if p.task_id == "mine"]) == 2)
            found = ant.ex.scan()
            assert {p.task_id for p in found} == {"mine"}
            by_pid = {p.pid: p for p in found}
            wrapper = by_pid[mine.pid]
            assert wrapper.session_leader and abs(wrapper.start_time - mine.start_time) < 0.05
            assert all(p.cuda_visible_devices == "0,2" for p in found)
            assert sum(p.session_leader for p in found) == 1  # sleep is not
            assert {p.task_id for p in other.scan()} == {"theirs"}
            assert theirs.pid in {p.pid for p in other.scan()}
        finally:
            await other.terminate_all(5)
            other.close()
        await ant.ex.kill("mine", 5)

    run(tmp_path, scenario)


def test_strays_of_a_task_that_ended_while_ant_was_down(
    tmp_path: Path, leftovers: Leftovers
) -> None:
    server_id = f"test-{uuid.uuid4().hex[:8]}"
    pid_file = tmp_path / "escaped.pid"
    wrapper, _, _ = start_orphan(tmp_path, escape("double-fork", pid_file), server_id)
    leftovers.add(wrapper)

    async def scenario(ant: Ant) -> None:
        pid = await read_pid(pid_file, leftovers)
        await until(lambda: gone(wrapper))
        found = ant.ex.scan()
        assert [(p.task_id, p.pid) for p in found] == [("orphan", pid)]
        assert ant.ex.watch_strays("unknown", [pid]) == 0  # not that task's
        assert ant.ex.watch_strays("orphan", [os.getpid(), 1, 999_999_999]) == 0  # not marked
        assert ant.ex.running_ids() == set() and ant.ex.lingering("orphan") == 0
        assert ant.ex.watch_strays("orphan", [p.pid for p in found]) == 1
        assert ant.ex.lingering("orphan") == 1 and ant.ex.running_ids() == set()
        await asyncio.sleep(0.1)
        assert ant.gone.empty()
        os.kill(pid, signal.SIGKILL)
        assert await ant.gone.get() == "orphan"
        await asyncio.sleep(0.1)
        assert ant.gone.empty() and ant.exits.empty()

    run(tmp_path, scenario, server_id=server_id)


def test_watched_strays_can_be_killed(tmp_path: Path, leftovers: Leftovers) -> None:
    server_id = f"test-{uuid.uuid4().hex[:8]}"
    pid_file = tmp_path / "escaped.pid"
    wrapper, _, _ = start_orphan(tmp_path, escape("setsid", pid_file, ignore_term=True), server_id)
    leftovers.add(wrapper)

    async def scenario(ant: Ant) -> None:
        pid = await read_pid(pid_file, leftovers)
        await until(lambda: gone(wrapper))
        assert ant.ex.watch_strays("orphan", [p.pid for p in ant.ex.scan()]) == 1
        await ant.ex.kill("orphan", 0.3)
        assert ant.gone.get_nowait() == "orphan"
        assert gone(pid) and ant.exits.empty()

    run(tmp_path, scenario, server_id=server_id)


def test_kill_of_an_adopted_task_finds_its_strays(tmp_path: Path, leftovers: Leftovers) -> None:
    server_id = f"test-{uuid.uuid4().hex[:8]}"
    pid_file = tmp_path / "escaped.pid"
    wrapper, start_time, exit_path = start_orphan(
        tmp_path, escape("setsid", pid_file) + "\nsleep 1000", server_id
    )
    leftovers.add(wrapper)

    async def scenario(ant: Ant) -> None:
        pid = await read_pid(pid_file, leftovers)
        assert ant.ex.adopt("orphan", wrapper, start_time, exit_path)
        await ant.ex.kill("orphan", 5)
        assert ant.exits.get_nowait() == ExitInfo("orphan", 128 + signal.SIGTERM, True, 0)
        assert gone(pid) and gone(wrapper)
        assert ant.gone.empty()

    run(tmp_path, scenario, server_id=server_id)


def test_adopted_task_that_ends_reports_its_strays(tmp_path: Path, leftovers: Leftovers) -> None:
    server_id = f"test-{uuid.uuid4().hex[:8]}"
    pid_file = tmp_path / "escaped.pid"
    flag = tmp_path / "go"
    wrapper, start_time, exit_path = start_orphan(
        tmp_path,
        escape("setsid", pid_file) + f"\nwhile [ ! -e {flag} ]; do sleep 0.02; done; exit 4",
        server_id,
    )
    leftovers.add(wrapper)

    async def scenario(ant: Ant) -> None:
        pid = await read_pid(pid_file, leftovers)
        assert ant.ex.adopt("orphan", wrapper, start_time, exit_path)
        flag.touch()
        assert await ant.exits.get() == ExitInfo("orphan", 4, False, 1)
        assert ant.ex.lingering("orphan") == 1
        os.kill(pid, signal.SIGKILL)
        assert await ant.gone.get() == "orphan"

    run(tmp_path, scenario, server_id=server_id)


def test_task_processes_are_marked(tmp_path: Path) -> None:
    async def scenario(ant: Ant) -> None:
        out = tmp_path / "out"
        launch(ant.ex, ant.request("t1", f'echo "$ANT_TASK_ID $ANT_SERVER_ID" > {out}'))
        assert await ant.exits.get() == ExitInfo("t1", 0, False)
        assert out.read_text().split() == ["t1", ant.server_id]

    run(tmp_path, scenario)


def test_terminate_all_ends_lingering_tasks_too(
    tmp_path: Path, mode: str, leftovers: Leftovers
) -> None:
    pid_file = tmp_path / "escaped.pid"

    async def scenario(ant: Ant) -> None:
        launch(ant.ex, ant.request("ended", escape("double-fork", pid_file)))
        assert (await ant.exits.get()).lingering == 1
        stray = await read_pid(pid_file, leftovers)
        launch(ant.ex, ant.request("running", "sleep 1000"))
        # Stopped: it only sees its SIGTERM once continued.
        os.kill(stray, signal.SIGSTOP)
        with pytest.raises(LaunchError, match="still has processes left"):
            launch(ant.ex, ant.request("ended", "true"))  # its processes still carry that id
        # The grace is long: a SIGKILL (137) would mean that "running" missed its SIGTERM.
        await asyncio.gather(ant.ex.terminate_all(10), ant.ex.kill("ended", 10))  # joined
        assert ant.exits.get_nowait() == ExitInfo("running", 128 + signal.SIGTERM, True, 0)
        assert ant.gone.get_nowait() == "ended"
        assert gone(stray)
        await asyncio.sleep(0.1)
        assert ant.exits.empty() and ant.gone.empty()
        launch(ant.ex, ant.request("ended", "true"))  # free again
        assert await ant.exits.get() == ExitInfo("ended", 0, False, 0)

    run(tmp_path, scenario, subreaper=mode == "subreaper")


def test_escaped_processes_that_cleared_their_environment(
    tmp_path: Path, mode: str, leftovers: Leftovers
) -> None:
    """`env -i` takes the marker away; staying in the task's session, or being found in its
    tree before, still tells."""
    pids = tmp_path / "pids"
    cmd = (
        f"env -i sh -c 'echo $$ >> {pids}; exec sleep 300' &\n"
        # a cleared parent with a child: 2 more
        f"env -i sh -c 'sleep 300 & echo $! >> {pids}; echo $$ >> {pids}; sleep 300' &\n"
        f"while [ $(cat {pids} 2>/dev/null | wc -l) -lt 3 ]; do sleep 0.02; done"
    )

    async def scenario(ant: Ant) -> None:
        launch(ant.ex, ant.request("t", cmd))
        info = await ant.exits.get()
        assert info.lingering == 4  # the three sleeps and the cleared parent
        for pid in pids.read_text().split():
            leftovers.add(int(pid))
        assert not [p for p in ant.ex.scan() if p.task_id == "t"]  # no marker to scan for
        await ant.ex.kill("t", 5)
        assert ant.gone.get_nowait() == "t"
        assert all(gone(int(pid)) for pid in pids.read_text().split())

    run(tmp_path, scenario, subreaper=mode == "subreaper")
