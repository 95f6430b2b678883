"""Which wrapper a command gets, and that a plain command under dash does exactly what it does
under bash: same output, exit code and environment. Real processes, real files."""

from __future__ import annotations

import asyncio
import shutil
import signal
import uuid
from pathlib import Path

import psutil
import pytest

from ant_scheduler.executors.base import ExitInfo
from ant_scheduler.executors.local import LocalExecutor, read_exit_file
from ant_scheduler.executors.wrappers import plain_command
from tests.unit.executor_requests import Req, launch

pytestmark = pytest.mark.skipif(shutil.which("dash") is None, reason="no dash here")

PATH = "/usr/local/bin:/usr/bin:/bin"


@pytest.fixture
def programs(tmp_path: Path) -> Path:
    """A folder with a `#!` script, a script without one, and a file that cannot run."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "shebang.sh").write_text('#!/bin/bash\necho "args: $*"\nexit 3\n')
    (folder / "bare.sh").write_text('echo "bare: $BASH_VERSION"\n')  # bash runs it as bash
    (folder / "data.txt").write_text("not a program\n")
    for name in ("shebang.sh", "bare.sh"):
        (folder / name).chmod(0o755)
    return folder


@pytest.mark.parametrize(
    ("command", "env", "plain"),
    [
        ("true", {}, True),
        ("  false  ", {}, True),
        ("sleep 1", {"PATH": PATH}, True),
        ("X=1 Y=a/b env", {"PATH": PATH}, True),
        ("./bin/shebang.sh a b", {}, True),
        ("sleep 1", {}, False),  # no PATH: each shell has its own default
        ("sleep 1", {"PATH": "bin:/usr/bin"}, False),  # a relative entry
        ("sleep 1", {"PATH": PATH, "BASH_FUNC_module%%": "() { :; }"}, False),  # dash drops it
        ("sleep 1", {"PATH": PATH, "BASH_ENV": "/etc/profile"}, False),  # bash reads it
        ("sleep 1", {"PATH": PATH, "SHLVL": "x"}, False),
        ("sleep 1", {"PATH": PATH, "OLDPWD": "/no/such/dir"}, False),
        ("./bin/bare.sh", {}, False),  # no `#!`: the shell itself would run it
        ("./bin/data.txt", {}, False),
        ("no-such-program-xyz", {"PATH": PATH}, False),
        ("echo hi", {"PATH": PATH}, False),  # a builtin that differs between the shells
        ("printf x", {"PATH": PATH}, False),
        ("cd /tmp", {"PATH": PATH}, False),
        ("sleep $N", {"PATH": PATH}, False),
        ("sleep '1'", {"PATH": PATH}, False),
        ("ls *", {"PATH": PATH}, False),
        ("ls ~", {"PATH": PATH}, False),
        ("echo {a,b}", {"PATH": PATH}, False),
        ("sleep 1 > out", {"PATH": PATH}, False),
        ("sleep 1; true", {"PATH": PATH}, False),
        ("sleep 1 # why", {"PATH": PATH}, False),
        ("X=1", {"PATH": PATH}, False),
        ("", {"PATH": PATH}, False),
    ],
)
def test_which_commands_are_plain(
    tmp_path: Path, programs: Path, command: str, env: dict[str, str], plain: bool
) -> None:
    assert (plain_command(command, env, str(tmp_path)) is not None) is plain


def test_a_plain_command_gets_what_bash_would_add_to_its_environment(tmp_path: Path) -> None:
    found = plain_command("sleep 1", {"PATH": PATH, "SHLVL": "2"}, str(tmp_path))
    assert found is not None
    assert found.env["SHLVL"] == "3" and found.env["_"] == shutil.which("sleep", path=PATH)


def run_both(tmp: Path, command: str, env: dict[str, str]) -> dict[str, tuple[ExitInfo, str]]:
    """The command as a task under the dash wrapper and under bash: (exit, log) for each."""

    async def main() -> dict[str, tuple[ExitInfo, str]]:
        ex = LocalExecutor(asyncio.get_running_loop(), server_id=f"test-{uuid.uuid4().hex[:8]}")
        exits: asyncio.Queue[ExitInfo] = asyncio.Queue()
        ex.set_exit_callback(exits.put_nowait)
        out = {}
        try:
            for shell in ("dash", "bash"):
                if shell == "bash":
                    ex._dash = None  # what a machine without dash does
                log = tmp / "logs" / f"{shell}.log"
                req = Req(shell, command, env, (), str(tmp), log, log.with_suffix(".exit"))
                wrapper = psutil.Process(launch(ex, req).pid)
                try:
                    name = wrapper.exe() or "gone"  # a zombie's is empty
                except psutil.Error:
                    name = "gone"  # `true` may be over before we look
                info = await asyncio.wait_for(exits.get(), 20)
                assert read_exit_file(log.with_suffix(".exit")) == info.exit_code
                assert name == "gone" or Path(name).name == shell
                text = log.read_text().replace(f"ANT_TASK_ID={shell}", "ANT_TASK_ID=x")
                out[shell] = (info, text)
        finally:
            await ex.terminate_all(0)
            ex.close()
        return out

    return asyncio.run(main())


@pytest.mark.parametrize(
    "command",
    ["/usr/bin/env", "env", "X=1 env", "false", "true", "./bin/shebang.sh a b", "sleep 0.01"],
)
def test_dash_runs_a_plain_command_exactly_as_bash(
    tmp_path: Path, programs: Path, command: str
) -> None:
    env = {"PATH": PATH, "MY_VAR": "hello world", "SHLVL": "1"}
    assert plain_command(command, env, str(tmp_path)) is not None
    got = run_both(tmp_path, command, env)
    (dash_exit, dash_log), (bash_exit, bash_log) = got["dash"], got["bash"]
    assert (dash_exit.exit_code, dash_exit.killed) == (bash_exit.exit_code, bash_exit.killed)
    # The same lines (a process's environment has no order to keep).
    assert sorted(dash_log.splitlines()) == sorted(bash_log.splitlines())


def test_a_plain_command_reads_nothing_and_cannot_write_the_exit_file(tmp_path: Path) -> None:
    """Its stdin is /dev/null (the wrapper's stdin is the exit file), as under bash."""
    command = "/bin/cat"
    got = run_both(tmp_path, command, {"PATH": PATH})
    assert got["dash"][0].exit_code == got["bash"][0].exit_code == 0
    assert got["dash"][1] == got["bash"][1] == ""


def test_a_killed_plain_task_records_the_signal(tmp_path: Path) -> None:
    async def main() -> None:
        ex = LocalExecutor(asyncio.get_running_loop(), server_id=f"test-{uuid.uuid4().hex[:8]}")
        exits: asyncio.Queue[ExitInfo] = asyncio.Queue()
        ex.set_exit_callback(exits.put_nowait)
        log = tmp_path / "logs" / "t.log"
        try:
            req = Req(
                "t", "sleep 1000", {"PATH": PATH}, (), str(tmp_path), log, log.with_suffix(".exit")
            )
            pid = launch(ex, req).pid
            assert Path(psutil.Process(pid).exe()).name == "dash"
            await asyncio.sleep(0.2)
            await ex.kill("t", 10)
            assert exits.get_nowait() == ExitInfo("t", 128 + signal.SIGTERM, True)
            assert read_exit_file(log.with_suffix(".exit")) == 128 + signal.SIGTERM
        finally:
            await ex.terminate_all(0)
            ex.close()

    asyncio.run(main())
