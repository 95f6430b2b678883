"""The local executor with real processes: env, logs, exit codes, kill, adoption."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from ant_scheduler.executors.base import ExitInfo, LaunchError, LaunchRequest
from ant_scheduler.executors.local import LocalExecutor, read_exit_file

T = TypeVar("T")


def request(tmp: Path, task_id: str, command: str, gpus: tuple[int, ...] = ()) -> LaunchRequest:
    log = tmp / "logs" / f"{task_id}.log"
    return LaunchRequest(
        task_id=task_id,
        command=command,
        env={"MY_VAR": "hello world"},
        gpu_ids=gpus,
        cwd=str(tmp),
        log_path=log,
        exit_path=log.with_suffix(".exit"),
    )


def run(scenario: Callable[[LocalExecutor, asyncio.Queue[ExitInfo]], Awaitable[T]]) -> T:
    async def main() -> T:
        executor = LocalExecutor()
        exits: asyncio.Queue[ExitInfo] = asyncio.Queue()
        executor.set_exit_callback(exits.put_nowait)
        try:
            return await asyncio.wait_for(scenario(executor, exits), 30)
        finally:
            executor.close()

    return asyncio.run(main())


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_env_log_and_exit_codes(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        cmd = 'echo "cvd=[$CUDA_VISIBLE_DEVICES] id=$ANT_TASK_ID pu=$PYTHONUNBUFFERED v=$MY_VAR"'
        ex.start(request(tmp_path, "ok", cmd + "; echo err >&2", (1, 3)))
        ex.start(request(tmp_path, "cpu", 'echo "cvd=[${CUDA_VISIBLE_DEVICES-unset}]"; exit 3'))
        got = {}
        for _ in range(2):
            info = await exits.get()
            got[info.task_id] = info
        assert got["ok"] == ExitInfo("ok", 0, False)
        assert got["cpu"] == ExitInfo("cpu", 3, False)
        log = (tmp_path / "logs" / "ok.log").read_text()
        assert "cvd=[1,3] id=ok pu=1 v=hello world" in log and "err" in log
        assert "cvd=[]" in (tmp_path / "logs" / "cpu.log").read_text()
        assert read_exit_file(tmp_path / "logs" / "cpu.exit") == 3
        assert ex.running_ids() == set()

    run(scenario)


def test_kill_takes_the_whole_group(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        pids_file = tmp_path / "pids"
        ex.start(
            request(
                tmp_path,
                "tree",
                f"sleep 1000 & echo $! > {pids_file}; sleep 1000 & echo $! >> {pids_file}; wait",
            )
        )
        while not pids_file.exists() or len(pids_file.read_text().split()) < 2:
            await asyncio.sleep(0.02)
        pids = [int(p) for p in pids_file.read_text().split()]
        await ex.kill("tree", grace_seconds=5)
        info = await exits.get()
        assert info.task_id == "tree" and info.killed is True
        for _ in range(100):
            if all(gone(p) for p in pids):
                break
            await asyncio.sleep(0.02)
        assert all(gone(p) for p in pids)
        await ex.kill("tree", 1)  # unknown now: a no-op

    run(scenario)


def test_sigterm_ignorer_gets_sigkill_after_grace(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        ready = tmp_path / "ready"
        proc = ex.start(request(tmp_path, "stubborn", f"trap '' TERM; touch {ready}; sleep 1000"))
        while not ready.exists():
            await asyncio.sleep(0.02)
        t0 = time.monotonic()
        await ex.kill("stubborn", grace_seconds=0.5)
        info = await exits.get()
        assert info.killed and time.monotonic() - t0 >= 0.5
        assert gone(proc.pid)

    run(scenario)


def test_missing_cwd_is_a_launch_error(tmp_path: Path) -> None:
    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        req = request(tmp_path, "x", "true")
        bad = LaunchRequest(**{**req.__dict__, "cwd": str(tmp_path / "missing")})
        with pytest.raises(LaunchError, match="missing"):
            ex.start(bad)

    run(scenario)


ORPHAN_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from ant_scheduler.executors.base import LaunchRequest
    from ant_scheduler.executors.local import LocalExecutor

    async def main():
        log = Path(sys.argv[1])
        info = LocalExecutor().start(LaunchRequest(
            "orphan", sys.argv[2], {}, (), str(log.parent), log, log.with_suffix(".exit")))
        print(json.dumps([info.pid, info.start_time]), flush=True)

    asyncio.run(main())
    """
)


def start_orphan(tmp_path: Path, command: str) -> tuple[int, float, Path]:
    """Start a task from another process that then exits, as if ANT died."""
    log = tmp_path / "orphan.log"
    out = subprocess.run(
        [sys.executable, "-c", ORPHAN_SCRIPT, str(log), command],
        capture_output=True,
        text=True,
        check=True,
    )
    pid, start_time = __import__("json").loads(out.stdout)
    return pid, start_time, log.with_suffix(".exit")


def test_adopt_a_task_that_outlived_its_parent(tmp_path: Path) -> None:
    flag = tmp_path / "go"
    pid, start_time, exit_path = start_orphan(
        tmp_path, f"while [ ! -e {flag} ]; do sleep 0.02; done; exit 6"
    )
    assert not gone(pid)

    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        assert ex.adopt("orphan", pid, start_time + 5, exit_path) is False  # wrong start time
        assert ex.adopt("orphan", pid, start_time, exit_path) is True
        assert ex.running_ids() == {"orphan"}
        flag.touch()
        info = await exits.get()
        assert info == ExitInfo("orphan", 6, False)

    run(scenario)


def test_adopted_task_can_be_killed(tmp_path: Path) -> None:
    pid, start_time, exit_path = start_orphan(tmp_path, "sleep 1000")

    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        assert ex.adopt("orphan", pid, start_time, exit_path)
        await ex.kill("orphan", 5)
        info = await exits.get()
        assert info.killed and info.exit_code == 143  # the wrapper recorded SIGTERM

    run(scenario)


def test_dead_task_is_not_adopted_but_its_exit_file_tells(tmp_path: Path) -> None:
    pid, start_time, exit_path = start_orphan(tmp_path, "exit 9")
    for _ in range(200):
        if gone(pid) and read_exit_file(exit_path) is not None:
            break
        time.sleep(0.02)

    async def scenario(ex: LocalExecutor, exits: asyncio.Queue[ExitInfo]) -> None:
        assert ex.adopt("orphan", pid, start_time, exit_path) is False

    run(scenario)
    assert read_exit_file(exit_path) == 9
    exit_path.write_text("garbage")
    assert read_exit_file(exit_path) is None
    assert read_exit_file(tmp_path / "none.exit") is None
