"""The local executor with real processes: env, logs, exit codes, kill, adoption after a crash."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import stat
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from ant_scheduler.executors import processes
from ant_scheduler.executors.base import ExitInfo, LaunchError
from ant_scheduler.executors.local import LocalExecutor, is_simple_command, read_exit_file
from tests.unit.executor_requests import Req, launch, start_orphan

T = TypeVar("T")
# Processes are found by this marker: unique, so that tests running at the same time on this
# machine (other checkouts, other pytest processes) never take each other's tasks for theirs.
SERVER_ID = f"test-{uuid.uuid4().hex[:8]}"
Scenario = Callable[[LocalExecutor, "asyncio.Queue[ExitInfo]"], Awaitable[T]]


def request(tmp: Path, task_id: str, command: str, gpus: tuple[int, ...] = ()) -> Req:
    log = tmp / "logs" / f"{task_id}.log"
    return Req(
        task_id=task_id,
        command=command,
        env={"MY_VAR": "hello world"},
        gpu_ids=gpus,
        cwd=str(tmp),
        log_path=log,
        exit_path=log.with_suffix(".exit"),
    )


def run(scenario: Scenario[T], *, use_pidfd: bool = True, **options: Any) -> T:
    async def main() -> T:
        options.setdefault("server_id", SERVER_ID)
        executor = LocalExecutor(asyncio.get_running_loop(), use_pidfd=use_pidfd, **options)
        exits: asyncio.Queue[ExitInfo] = asyncio.Queue()
        executor.set_exit_callback(exits.put_nowait)
        try:
            return await asyncio.wait_for(scenario(executor, exits), 20)
        finally:
            await executor.terminate_all(0)  # whatever a failed test left running
            executor.close()

    return asyncio.run(main())


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.02)


async def collect(exits: asyncio.Queue[ExitInfo], n: int) -> dict[str, ExitInfo]:
    got = {}
    for _ in range(n):
        info = await exits.get()
        assert info.task_id not in got, "reported twice"
        got[info.task_id] = info
    return got


def written_pids(path: Path, n: int) -> Callable[[], bool]:
    return lambda: path.exists() and len(path.read_text().split()) == n


@pytest.mark.parametrize("use_pidfd", [True, False], ids=["pidfd", "polling"])
def test_env_log_and_exit_codes(tmp_path: Path, use_pidfd: bool) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        cmd = (
            'echo "cvd=[$CUDA_VISIBLE_DEVICES] order=$CUDA_DEVICE_ORDER id=$ANT_TASK_ID'
            ' pu=$PYTHONUNBUFFERED v=$MY_VAR args=$#"; echo err >&2; read -r x; echo "stdin=$?"'
        )
        launch(ex, request(tmp_path, "ok", cmd, (1, 3)))
        launch(ex, request(tmp_path, "cpu", 'echo "cvd=[${CUDA_VISIBLE_DEVICES-unset}]"; exit 3'))
        assert ex.running_ids() == {"ok", "cpu"} and set(ex.pids()) == {"ok", "cpu"}
        got = await collect(exits, 2)
        assert got["ok"] == ExitInfo("ok", 0, False)
        assert got["cpu"] == ExitInfo("cpu", 3, False)
        log = (tmp_path / "logs" / "ok.log").read_text()
        expected = "cvd=[1,3] order=PCI_BUS_ID id=ok pu=1 v=hello world args=0"
        assert expected in log and "err" in log and "stdin=1" in log
        assert "cvd=[]" in (tmp_path / "logs" / "cpu.log").read_text()  # set, and empty
        assert read_exit_file(tmp_path / "logs" / "ok.exit") == 0
        assert read_exit_file(tmp_path / "logs" / "cpu.exit") == 3
        assert ex.running_ids() == set() and ex.pids() == {}

    run(scenario, use_pidfd=use_pidfd)


def test_command_is_not_in_the_task_environment_and_runs_in_cwd(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        launch(ex, request(tmp_path, "env", "env > env.txt; pwd > pwd.txt  # marker-8d1f"))
        assert (await exits.get()).exit_code == 0
        assert "marker-8d1f" not in (tmp_path / "env.txt").read_text()
        assert (tmp_path / "pwd.txt").read_text().strip() == str(tmp_path)

    run(scenario)


def test_log_is_appended_and_a_stale_exit_file_is_not_reused(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        req = request(tmp_path, "again", "echo run; kill -KILL $$")  # $$: the wrapper
        req.log_path.parent.mkdir()
        req.log_path.write_text("earlier\n")
        req.exit_path.write_text("0\n")  # left by an earlier run: must not be read as this one's
        launch(ex, req)
        info = await exits.get()
        # From the wait status. The command's subshell may outlive the wrapper by an instant.
        assert dataclasses.replace(info, lingering=0) == ExitInfo(
            "again", 128 + signal.SIGKILL, False
        )
        assert req.log_path.read_text() == "earlier\nrun\n"

    run(scenario)


def test_kill_takes_the_whole_group(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        pids_file = tmp_path / "pids"
        launch(
            ex,
            request(
                tmp_path,
                "tree",
                f"sleep 1000 & echo $! > {pids_file}; sleep 1000 & echo $! >> {pids_file}; wait",
            ),
        )
        await until(written_pids(pids_file, 2))
        pids = [int(p) for p in pids_file.read_text().split()]
        await ex.kill("tree", grace_seconds=10)
        info = exits.get_nowait()  # reported before kill() returned
        assert info == ExitInfo("tree", 128 + signal.SIGTERM, True)  # the wrapper recorded it
        assert all(gone(p) for p in pids)  # no grandchild outlives the report
        assert ex.running_ids() == set()
        await ex.kill("tree", 1)  # finished now: a no-op
        await ex.kill("never-heard-of", 1)
        assert exits.empty()

    run(scenario)


def test_background_child_ignoring_sigterm_is_killed_after_grace(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        pid_file = tmp_path / "pid"
        cmd = f"(trap '' TERM; exec sleep 1000) & echo $! > {pid_file}; wait"
        launch(ex, request(tmp_path, "t", cmd))
        await until(written_pids(pid_file, 1))
        child = int(pid_file.read_text())
        await ex.kill("t", 0.3)
        # The wrapper ended on SIGTERM and said so; the report waited for the stubborn child.
        assert exits.get_nowait() == ExitInfo("t", 128 + signal.SIGTERM, True)
        assert gone(child)

    run(scenario)


@pytest.mark.parametrize("use_pidfd", [True, False], ids=["pidfd", "polling"])
def test_sigterm_ignorer_gets_sigkill_after_grace(tmp_path: Path, use_pidfd: bool) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        ready = tmp_path / "ready"
        proc = launch(ex, request(tmp_path, "stubborn", f"trap '' TERM; touch {ready}; sleep 1000"))
        await until(ready.exists)
        await ex.kill("stubborn", grace_seconds=0.3)
        # SIGKILL took the wrapper too, so the code comes from its wait status.
        assert exits.get_nowait() == ExitInfo("stubborn", 128 + signal.SIGKILL, True)
        assert gone(proc.pid)

    run(scenario, use_pidfd=use_pidfd)


def test_concurrent_kills_report_once_and_terminate_all(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        launch(ex, request(tmp_path, "a", "sleep 1000"))
        launch(ex, request(tmp_path, "b", "sleep 1000"))
        launch(ex, request(tmp_path, "c", "trap '' TERM; sleep 1000"))
        await asyncio.gather(ex.kill("a", 5), ex.kill("a", 5))
        assert exits.get_nowait() == ExitInfo("a", 128 + signal.SIGTERM, True)
        await ex.terminate_all(0.3)
        got = await collect(exits, 2)
        assert got["b"].killed and got["c"].killed
        assert exits.empty() and ex.running_ids() == set()

    run(scenario)


def test_cancelled_kill_still_finishes(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        ready = tmp_path / "ready"
        launch(ex, request(tmp_path, "t", f"trap '' TERM; touch {ready}; sleep 1000"))
        await until(ready.exists)
        with pytest.raises(asyncio.TimeoutError):  # SIGKILL cannot come before the 0.3 s grace
            await asyncio.wait_for(ex.kill("t", 0.3), 0.05)
        assert (await exits.get()) == ExitInfo("t", 128 + signal.SIGKILL, True)

    run(scenario)


def test_launch_errors(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        req = request(tmp_path, "x", "true")
        with pytest.raises(LaunchError, match="missing") as err:
            launch(ex, dataclasses.replace(req, cwd=str(tmp_path / "missing")))
        assert err.value.code == "launch_failed"
        (tmp_path / "a-file").touch()
        with pytest.raises(LaunchError, match=r"cannot use log directory .*a-file: Not a dir"):
            launch(ex, dataclasses.replace(req, log_path=tmp_path / "a-file" / "x.log"))
        with pytest.raises(LaunchError):
            launch(ex, dataclasses.replace(req, env={"BAD": "nul\0byte"}))
        assert ex.running_ids() == set()
        launch(ex, dataclasses.replace(req, command="sleep 1000"))
        with pytest.raises(LaunchError, match="already running"):
            launch(ex, req)
        await ex.kill("x", 5)
        assert (await exits.get()).killed

    run(scenario)


def test_close_leaves_tasks_running_and_reports_nothing(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        pid = launch(ex, request(tmp_path, "t", "sleep 1000")).pid
        ex.close()
        assert ex.running_ids() == set()
        await asyncio.sleep(0.1)
        assert not gone(pid)
        os.killpg(pid, signal.SIGKILL)
        await asyncio.sleep(0.1)
        assert exits.empty()

    run(scenario)


@pytest.mark.parametrize("use_pidfd", [True, False], ids=["pidfd", "polling"])
def test_adopt_a_task_that_outlived_a_crashed_ant(tmp_path: Path, use_pidfd: bool) -> None:
    flag = tmp_path / "go"
    pid, start_time, exit_path = start_orphan(
        tmp_path, f"while [ ! -e {flag} ]; do sleep 0.02; done; exit 6", SERVER_ID
    )
    assert not gone(pid)

    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        assert ex.adopt("orphan", pid, start_time + 5, exit_path) is False  # wrong start time
        assert ex.adopt("orphan", pid, start_time - 1, exit_path) is False
        assert ex.running_ids() == set()
        assert ex.adopt("orphan", pid, start_time, exit_path) is True
        assert ex.adopt("orphan", pid, start_time, exit_path) is True  # already watched
        assert ex.pids() == {"orphan": pid}
        flag.touch()
        assert (await exits.get()) == ExitInfo("orphan", 6, False)
        await asyncio.sleep(0.3)
        assert exits.empty()

    run(scenario, use_pidfd=use_pidfd)


def test_adopted_task_can_be_killed_with_its_children(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    pid, start_time, exit_path = start_orphan(
        tmp_path, f"sleep 1000 & echo $! > {pids_file}; sleep 1000", SERVER_ID
    )

    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        await until(written_pids(pids_file, 1))
        assert ex.adopt("orphan", pid, start_time, exit_path)
        await ex.kill("orphan", 5)
        assert exits.get_nowait() == ExitInfo("orphan", 128 + signal.SIGTERM, True)
        assert gone(pid) and gone(int(pids_file.read_text()))

    run(scenario)


def test_adopted_task_without_exit_file_has_unknown_code(tmp_path: Path) -> None:
    flag = tmp_path / "go"
    pid, start_time, exit_path = start_orphan(
        tmp_path, f"while [ ! -e {flag} ]; do sleep 0.02; done; kill -KILL $$", SERVER_ID
    )

    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        assert ex.adopt("orphan", pid, start_time, exit_path)
        flag.touch()
        assert (await exits.get()) == ExitInfo("orphan", None, False)

    run(scenario)


def test_dead_task_is_not_adopted_but_its_exit_file_tells(tmp_path: Path) -> None:
    flag = tmp_path / "go"
    pid, start_time, exit_path = start_orphan(
        tmp_path, f"while [ ! -e {flag} ]; do sleep 0.02; done; exit 9", SERVER_ID
    )
    flag.touch()  # the task ends while "ANT is down"
    deadline = time.monotonic() + 10
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)

    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        assert ex.adopt("orphan", pid, start_time, exit_path) is False
        assert ex.running_ids() == set()

    run(scenario)
    assert read_exit_file(exit_path) == 9


def test_read_exit_file_rejects_garbage(tmp_path: Path) -> None:
    path = tmp_path / "t.exit"
    for text, expected in [("0\n", 0), ("143\n", 143), (" 7 ", 7), ("", None), ("x1", None)]:
        path.write_text(text)
        assert read_exit_file(path) == expected, text
    for text in ["-1", "256", "9" * 40]:
        path.write_text(text)
        assert read_exit_file(path) is None, text
    path.write_bytes(b"\xff\xfe")
    assert read_exit_file(path) is None
    assert read_exit_file(tmp_path / "none.exit") is None
    assert read_exit_file(tmp_path) is None  # a directory


def test_start_is_quick(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> list[float]:
        took = []
        for n in range(50):
            t0 = time.perf_counter()
            launch(ex, request(tmp_path, f"t{n}", "exit 0"))
            took.append(time.perf_counter() - t0)
        got = await collect(exits, 50)
        assert all(info.exit_code == 0 for info in got.values())
        return took

    took = run(scenario)
    print(f"\nLocalExecutor.start: median {statistics.median(took) * 1000:.2f} ms over 50")


# ---------------------------------------------------------------------- safe launches


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def launch_fails(ex: LocalExecutor, req: Req, match: str) -> LaunchError:
    """The start fails with that message, leaving no process and no open fd behind."""
    fds, children = open_fds(), set(processes.children(os.getpid()))
    with pytest.raises(LaunchError, match=match) as err:
        launch(ex, req)
    assert open_fds() == fds
    assert set(processes.children(os.getpid())) <= children
    assert ex.running_ids() == set()
    assert "\n" not in err.value.message
    return err.value


def test_symlinks_planted_on_the_log_path_are_not_followed(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        target = tmp_path / "precious"
        target.write_text("keep me\n")
        req = request(tmp_path, "t", "echo written")
        logs = req.log_path.parent
        logs.mkdir(mode=0o700)

        req.log_path.symlink_to(target)  # the log
        launch_fails(ex, req, r"cannot open log file .*t\.log: it is a symbolic link")
        req.log_path.unlink()

        req.exit_path.symlink_to(target)  # the exit file (it would be truncated)
        launch_fails(ex, req, r"cannot create exit file .*t\.exit: it is a symbolic link")
        req.exit_path.unlink()
        req.log_path.unlink()  # opened before the exit file failed: a plain empty file

        dangling = tmp_path / "not-yet"
        req.log_path.symlink_to(dangling)  # a dangling one: must not create its target
        launch_fails(ex, req, "symbolic link")
        assert not dangling.exists()
        req.log_path.unlink()

        (logs / "loop-a").symlink_to(logs / "loop-b")
        (logs / "loop-b").symlink_to(logs / "loop-a")
        loop_req = dataclasses.replace(req, log_path=logs / "loop-a")
        launch_fails(ex, loop_req, "cannot open log file .*loop-a: it is a symbolic link")

        os.mkfifo(req.log_path)  # would block the event loop if opened blindly
        launch_fails(ex, req, "cannot open log file .*t\\.log: it is not a regular file")
        req.log_path.unlink()

        os.link(target, req.exit_path)  # a hard link would truncate the target
        launch_fails(ex, req, "cannot create exit file .*: it has 2 hard links")
        req.exit_path.unlink()

        assert target.read_text() == "keep me\n" and stat.S_IMODE(target.stat().st_mode) != 0
        launch(ex, req)  # with the traps gone it works
        assert await exits.get() == ExitInfo("t", 0, False)
        assert req.log_path.read_text() == "written\n"

    run(scenario)


def test_symlinked_or_looping_session_directory_is_refused(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        real = tmp_path / "real"
        real.mkdir()
        req = request(tmp_path, "t", "true")
        (tmp_path / "logs").symlink_to(real)
        launch_fails(ex, req, r"cannot use log directory .*logs: it is a symbolic link")
        (tmp_path / "logs").unlink()
        (tmp_path / "logs").symlink_to(tmp_path / "logs")  # a loop
        launch_fails(ex, req, r"cannot use log directory .*logs: it is a symbolic link")
        (tmp_path / "logs").unlink()
        (tmp_path / "logs").symlink_to(tmp_path / "nowhere")  # dangling
        launch_fails(ex, req, r"cannot use log directory .*logs: it is a symbolic link")
        assert list(real.iterdir()) == [] and not (tmp_path / "nowhere").exists()

    run(scenario)


def test_unwritable_log_directory_fails_only_that_task(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        if os.geteuid() == 0:  # root writes anywhere a mode allows nothing: sysfs refuses
            blocked = Path("/sys/ant-test-no-such-dir/session")
        else:
            locked = tmp_path / "locked"
            locked.mkdir(mode=0o500)
            blocked = locked / "session"
        bad = request(tmp_path, "bad", "true")
        bad = dataclasses.replace(bad, log_path=blocked / "bad.log", exit_path=blocked / "bad.exit")
        launch_fails(ex, bad, f"cannot use log directory {blocked}: ")
        launch(ex, request(tmp_path, "good", "true"))  # the next task is not affected
        assert await exits.get() == ExitInfo("good", 0, False)

    run(scenario)


def test_exit_file_descriptor_is_not_inherited_by_the_command(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        listing = tmp_path / "fds"
        launch(ex, request(tmp_path, "t", f"ls -l /proc/self/fd > {listing}; exit 5"))
        assert await exits.get() == ExitInfo("t", 5, False)
        text = listing.read_text()
        assert "t.log" in text  # stdout and stderr
        assert "t.exit" not in text
        assert read_exit_file(tmp_path / "logs" / "t.exit") == 5  # the wrapper still wrote it

    run(scenario)


def test_workdir_and_conda_are_checked_before_the_start(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        req = request(tmp_path, "t", "pwd")
        missing = dataclasses.replace(req, workdir="/no/such/dir")
        launch_fails(ex, missing, "^working directory /no/such/dir does not exist$")
        relative = dataclasses.replace(req, workdir="sub")
        launch_fails(ex, relative, f"^working directory {tmp_path}/sub does not exist$")
        (tmp_path / "file").touch()
        a_file = dataclasses.replace(req, workdir="file")
        launch_fails(ex, a_file, "working directory .*/file is not a directory")
        no_conda = dataclasses.replace(req, conda="no-such-conda-8f2e")
        launch_fails(
            ex,
            no_conda,
            "^conda executable 'no-such-conda-8f2e' not found \\(ant_conda_env needs it\\)$",
        )
        launch_fails(ex, dataclasses.replace(req, conda="./bin/conda"), "conda executable")

        (tmp_path / "sub").mkdir()
        bin_dir = tmp_path / "sub" / "bin"
        bin_dir.mkdir()
        (bin_dir / "conda").write_text("#!/bin/sh\n")
        (bin_dir / "conda").chmod(0o755)
        env = {"HOME": str(tmp_path), "PATH": f"{bin_dir}:/usr/bin:/bin"}
        ok = [
            dataclasses.replace(req, task_id="rel", workdir="sub", conda="conda", env=env),
            dataclasses.replace(req, task_id="home", workdir="~/sub", conda="./bin/conda", env=env),
            dataclasses.replace(
                req, task_id="abs", workdir=str(tmp_path), conda=str(bin_dir / "conda")
            ),
        ]
        for good in ok:
            launch(ex, good)
        got = await collect(exits, 3)
        assert all(info.exit_code == 0 for info in got.values())

    run(scenario)


def test_ants_own_secrets_do_not_reach_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANT_TOKEN", "secret-token-1")
    monkeypatch.setenv("OTHER_SECRET", "secret-2")
    monkeypatch.setenv("ANT_HARMLESS", "visible")

    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        show = 'echo "${ANT_TOKEN-unset} ${OTHER_SECRET-unset} ${ANT_HARMLESS-unset}"'
        launch(ex, request(tmp_path, "plain", show))
        asked = request(tmp_path, "asked", show)
        launch(ex, dataclasses.replace(asked, env={"ANT_TOKEN": "the-tasks-own"}))
        await collect(exits, 2)
        assert (tmp_path / "logs" / "plain.log").read_text() == "unset secret-2 visible\n"
        assert (tmp_path / "logs" / "asked.log").read_text() == "the-tasks-own secret-2 visible\n"

    run(scenario)

    async def custom(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        show = 'echo "${ANT_TOKEN-unset} ${OTHER_SECRET-unset}"'
        launch(ex, request(tmp_path, "custom", show))
        await exits.get()
        assert (tmp_path / "logs" / "custom.log").read_text() == "secret-token-1 unset\n"

    run(custom, hidden_env=frozenset({"OTHER_SECRET"}))


@pytest.mark.parametrize("group_readable", [False, True])
def test_log_directory_and_file_modes(tmp_path: Path, group_readable: bool) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        old_umask = os.umask(0o077)  # the modes are exact whatever the umask
        try:
            req = request(tmp_path, "t", "echo hi")
            launch(ex, req)
        finally:
            os.umask(old_umask)
        await exits.get()
        dir_mode, file_mode = (0o750, 0o640) if group_readable else (0o700, 0o600)
        assert stat.S_IMODE(req.log_path.parent.stat().st_mode) == dir_mode
        assert stat.S_IMODE(req.log_path.stat().st_mode) == file_mode
        assert stat.S_IMODE(req.exit_path.stat().st_mode) == file_mode
        # An existing log (from an earlier run) is appended to, with its mode set right.
        req.log_path.chmod(0o666)
        launch(ex, dataclasses.replace(req, command="echo again"))
        await exits.get()
        assert req.log_path.read_text() == "hi\nagain\n"
        assert stat.S_IMODE(req.log_path.stat().st_mode) == file_mode

    run(scenario, log_group_readable=group_readable)


def test_empty_exit_file_means_no_code(tmp_path: Path) -> None:
    path = tmp_path / "t.exit"
    path.write_text("")
    assert read_exit_file(path) is None
    (tmp_path / "link.exit").symlink_to(path)
    path.write_text("3\n")
    assert read_exit_file(path) == 3
    assert read_exit_file(tmp_path / "link.exit") is None  # never read through a symlink


# ------------------------------------------------------------------ simple commands (P10)


@pytest.mark.parametrize(
    ("command", "simple"),
    [
        ("true", True),
        ("python train.py --lr 0.1 --name 'run 1'", True),
        ('CUDA_LAUNCH_BLOCKING=1 python -u x.py "$HOME"/data', True),
        ("echo $MY_VAR", True),
        ("true; false", False),
        ("a && b", False),
        ("a | b", False),
        ("python x.py > out.txt 2>&1 < /dev/null", True),  # for that command only
        ("a &> out.txt", False),
        ("a 2>&1 && b", False),
        ("cat <(ls)", False),
        ("echo $(date)", False),
        ("echo `date`", False),
        ("( true )", False),
        ("{ true; }", False),
        ("echo ${HOME}", False),
        ("python -c 'import os; print(1)'", False),  # a ; in quotes: the safe way, no harm
        ("sleep 1 &", False),
        ("true\nfalse", False),
        ("exec python x.py", False),
        ("exit 3", False),
        ("trap '' TERM", False),
        ("set -e", False),
        ("X=1 exec sleep 1", False),
        ("X=1", False),
        ("", False),
        ("# only a comment", False),
    ],
)
def test_which_commands_run_in_the_wrapper_itself(command: str, simple: bool) -> None:
    assert is_simple_command(command) is simple


def test_a_simple_command_is_the_wrappers_own_child(tmp_path: Path) -> None:
    """No subshell in between (one fork less); a list still gets its subshell."""

    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        simple = launch(ex, request(tmp_path, "simple", "sleep 30"))
        listed = launch(ex, request(tmp_path, "listed", "sleep 30; true"))

        def children(pid: int) -> list[psutil.Process]:
            return psutil.Process(pid).children()

        def names(procs: list[psutil.Process]) -> list[str]:
            return [p.name() for p in procs]

        # Each child is the shell until it has exec'd: wait for the exec (until() gives up).
        await until(lambda: names(children(simple.pid)) == ["sleep"])
        await until(lambda: len(children(listed.pid)) == 1)
        (sub,) = children(listed.pid)
        await until(lambda: names(sub.children()) == ["sleep"])
        assert sub.name() == "bash" and names(children(simple.pid)) == ["sleep"]
        await ex.kill("simple", grace_seconds=5)
        await ex.kill("listed", grace_seconds=5)
        got = await collect(exits, 2)
        assert got["simple"] == ExitInfo("simple", 128 + signal.SIGTERM, True)
        assert got["listed"] == ExitInfo("listed", 128 + signal.SIGTERM, True)
        assert read_exit_file(tmp_path / "logs" / "simple.exit") == 128 + signal.SIGTERM

    run(scenario)


def test_a_simple_command_has_its_exit_code_and_no_exit_descriptor(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        launch(ex, request(tmp_path, "fds", "ls -l /proc/self/fd"))
        launch(ex, request(tmp_path, "code", "bash -c 'exit 7'"))
        launch(ex, request(tmp_path, "missing", "no-such-command-4f2a"))
        launch(ex, request(tmp_path, "redirected", "sh -c 'echo out; exit 4' > out.txt"))
        got = await collect(exits, 4)
        assert got["redirected"] == ExitInfo("redirected", 4, False)
        assert (tmp_path / "out.txt").read_text() == "out\n"
        assert read_exit_file(tmp_path / "logs" / "redirected.exit") == 4
        assert got["fds"] == ExitInfo("fds", 0, False)
        text = (tmp_path / "logs" / "fds.log").read_text()
        assert "fds.log" in text and "fds.exit" not in text
        assert got["code"] == ExitInfo("code", 7, False)
        assert read_exit_file(tmp_path / "logs" / "code.exit") == 7
        assert got["missing"] == ExitInfo("missing", 127, False)
        assert "not found" in (tmp_path / "logs" / "missing.log").read_text()

    run(scenario)


def test_log_and_exit_files_are_renamed_from_spares_made_ahead(tmp_path: Path) -> None:
    """Inodes are allocated by a thread ahead of need (P10); a start only renames them."""
    spare_dir = tmp_path / "logs" / ".spare"
    spare_dir.mkdir(parents=True)
    (spare_dir / "left-by-an-earlier-ant").write_text("x")

    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        assert not (spare_dir / "left-by-an-earlier-ant").exists()
        await until(lambda: len(list(spare_dir.iterdir())) >= 8)
        spares = {p.stat().st_ino for p in spare_dir.iterdir()}
        req = request(tmp_path, "t", "echo hi")
        launch(ex, req)
        assert await exits.get() == ExitInfo("t", 0, False)
        assert {req.log_path.stat().st_ino, req.exit_path.stat().st_ino} <= spares
        assert req.log_path.read_text() == "hi\n" and read_exit_file(req.exit_path) == 0
        for path in (req.log_path, req.exit_path):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_nlink == 1
        req.exit_path.write_text("9\n")  # an existing log is appended to, an exit file emptied
        launch(ex, dataclasses.replace(req, command="echo again"))
        assert await exits.get() == ExitInfo("t", 0, False)
        assert req.log_path.read_text() == "hi\nagain\n" and read_exit_file(req.exit_path) == 0

    run(scenario, log_dir=tmp_path / "logs")
    assert list(spare_dir.iterdir()) == []  # close() removed what was left
