"""Processes that escape their task, and log paths planted by a task, against a real server.

Reality is read from /proc: which processes of which task are alive, on which GPUs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_tasks_api import submit, wait_state
from tests.reliability.reality import check_reality, kill_processes_of, processes_of, server_id
from tests.server import AntServer, wait_for

ANT = str(Path(sys.executable).parent / "ant")
DOUBLE_FORK = (
    f"{sys.executable} -c 'import os, time\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        time.sleep(300)\n"
    "    os._exit(0)\n"
    'print("parent done")\''
)
ESCAPES = {
    "background": "sleep 300 & echo started",
    "setsid": "setsid sleep 300 & echo started",
    "double-fork": DOUBLE_FORK,
}


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    if (tmp_path / "logs" / "ant.db").exists():
        kill_processes_of(tmp_path / "logs")


def gpu(c: object, index: int) -> dict[str, object]:
    return next(g for g in c.get("/api/v1/gpus").json() if g["index"] == index)  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_escaped_processes_keep_the_gpus_until_they_are_gone(
    server_factory: type[AntServer], case: str
) -> None:
    """Found: `sleep 300 & echo started`, `setsid sleep 300 &` and a Python double fork left
    processes running after the task was marked finished; its GPUs went to the next task at
    once, and a later kill answered 409 "nothing to kill"."""
    server = server_factory(
        fake_gpus=2, config={"RUNNER_wait_for_strays": True, "RUNNER_kill_grace_seconds": 1}
    ).start()
    ours = server_id(server.state_dir)
    with server.client() as c:
        submit(c, ESCAPES[case], n_gpus=2, task_id="escaper")
        submit(c, "echo next", n_gpus=1, task_id="next")
        done = wait_state(c, "escaper", "succeeded")
        assert done["exit_code"] == 0  # the exit code is recorded at once
        strays = processes_of(ours, "escaper")
        assert strays, "the escaped process should still run"
        task = c.get("/api/v1/tasks/escaper").json()
        assert task["lingering_processes"] == len(strays)
        note = gpu(c, 0)["note"]
        assert note == f"{len(strays)} stray process{'' if len(strays) == 1 else 'es'} of escaper"
        assert c.get("/api/v1/tasks/next").json()["state"] == "queued"  # GPUs not handed on
        shown = subprocess.run(
            [ANT, "gpus"],
            env={**os.environ, "ANT_URL": server.url, "ANT_TOKEN": server.token or ""},
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        assert f"allocated ({note})" in shown
        check_reality(c, server.state_dir)
        r = c.delete("/api/v1/tasks/escaper")
        assert r.status_code == 409 and "kill it first" in r.json()["error"]["message"]
        r = c.post("/api/v1/tasks/escaper/kill")  # not "nothing to kill": it ends them all
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "succeeded"
        assert processes_of(ours, "escaper") == []
        wait_state(c, "next", "succeeded")
        assert gpu(c, 0)["note"] is None
        check_reality(c, server.state_dir)


def test_kill_of_a_running_task_ends_every_process_it_started(
    server_factory: type[AntServer],
) -> None:
    server = server_factory(fake_gpus=2).start()
    ours = server_id(server.state_dir)
    command = f"sleep 300 & setsid sleep 300 & {DOUBLE_FORK}; sleep 300"
    with server.client() as c:
        submit(c, command, n_gpus=1, task_id="tree")
        wait_state(c, "tree", "running")
        wait_for(lambda: len(processes_of(ours, "tree")) >= 5)
        r = c.post("/api/v1/tasks/tree/kill")
        assert r.status_code == 200 and r.json()["state"] == "killed"
        assert processes_of(ours, "tree") == []
        check_reality(c, server.state_dir)


def test_strays_are_killed_after_the_grace(server_factory: type[AntServer]) -> None:
    server = server_factory(
        fake_gpus=1, config={"RUNNER_stray_grace_seconds": 0.5, "RUNNER_kill_grace_seconds": 1}
    ).start()
    ours = server_id(server.state_dir)
    with server.client() as c:
        submit(c, ESCAPES["setsid"], n_gpus=1, task_id="leaves")
        submit(c, "true", n_gpus=1, task_id="after")
        wait_state(c, "leaves", "succeeded")
        wait_state(c, "after", "succeeded", timeout=30)  # only once the stray was killed
        assert processes_of(ours, "leaves") == []
        check_reality(c, server.state_dir)
    assert "killing the processes task 'leaves' left behind" in server.output()


def test_strays_keep_their_gpus_across_a_restart_of_ant(server_factory: type[AntServer]) -> None:
    server = server_factory(fake_gpus=2, config={"RUNNER_wait_for_strays": True}).start()
    ours = server_id(server.state_dir)
    with server.client() as c:
        submit(c, ESCAPES["double-fork"], n_gpus=2, task_id="orphaner")
        wait_state(c, "orphaner", "succeeded")
        strays = processes_of(ours, "orphaner")
        assert strays
    server.kill9()
    assert processes_of(ours, "orphaner") == strays  # ANT's death kills nothing
    server.start()
    with server.client() as c:
        submit(c, "echo fits", n_gpus=1, task_id="waits")
        assert c.get("/api/v1/tasks/waits").json()["state"] == "queued"
        assert (
            gpu(c, 1)["note"]
            == f"{len(strays)} stray process{'es' if len(strays) > 1 else ''} of orphaner"
        )
        check_reality(c, server.state_dir)
        c.post("/api/v1/tasks/orphaner/kill").raise_for_status()
        assert processes_of(ours, "orphaner") == []
        wait_state(c, "waits", "succeeded")
        check_reality(c, server.state_dir)


def test_a_symlink_planted_at_a_log_path_fails_that_task_alone(
    server_factory: type[AntServer], tmp_path: Path
) -> None:
    """Found: one task's launch error (a symlink at its log path, which any task can plant in its
    own session log directory) aborted the whole pass: a sibling ran while the store said
    queued, another was stuck."""
    server = server_factory(fake_gpus=4).start()
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    with server.client() as c:
        first = submit(c, "echo planting", task_id="planter")[0]
        log = Path(wait_state(c, first["task_id"], "succeeded")["log_path"])
        assert log.parent.stat().st_mode & 0o777 == 0o700
        assert log.stat().st_mode & 0o777 == 0o600
        os.symlink(target, log.parent / "victim.log")  # what the task itself could have done
        text = "\n".join(
            f"ant_task_id={name} ant_n_gpus=1 echo {name}"
            for name in ("before", "victim", "sibling", "last")
        )
        submit(c, text, mode="multi")
        victim = wait_state(c, "victim", "failed")
        assert "symbolic link" in victim["reason"] or "symlink" in victim["reason"], victim
        for name in ("before", "sibling", "last"):
            wait_state(c, name, "succeeded")
        assert target.read_text() == "keep me\n"
        check_reality(c, server.state_dir)


def test_a_missing_working_directory_is_a_reason_not_an_exit_code(server: AntServer) -> None:
    with server.client() as c:
        submit(c, 'ant_envar=\'{"ant_wd": "/no/such/dir"}\' true', task_id="nowd")
        task = wait_state(c, "nowd", "failed")
        assert "/no/such/dir" in task["reason"], task
        submit(
            c,
            'ant_envar=\'{"ant_conda_env": "x", "ant_conda_path": "/no/conda"}\' true',
            task_id="noconda",
        )
        task = wait_state(c, "noconda", "failed")
        assert "conda" in task["reason"], task
        check_reality(c, server.state_dir)


def test_ant_token_never_reaches_a_task(server: AntServer) -> None:
    with server.client() as c:
        submit(c, "env", task_id="env")
        log = Path(wait_state(c, "env", "succeeded")["log_path"]).read_text()
    assert "ANT_TOKEN" not in log and (server.token or "") not in log
    assert "ANT_TASK_ID=env" in log and "ANT_SERVER_ID=" in log
