"""Timeouts through the API and the CLI, on real processes, across a kill -9 of the server."""

from __future__ import annotations

import re

import psutil

from tests.api.test_tasks_api import assert_error, submit, wait_state
from tests.cli.test_cli import Ant
from tests.server import AntServer, wait_for


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_task_past_its_timeout_is_killed_and_ends_timed_out(server: AntServer) -> None:
    ant = Ant(server)
    with server.client() as c:
        [task] = submit(c, "sleep 60", n_gpus=1, timeout=1.5)
        assert task["timeout"] == 1.5 and "ant_timeout=1.5s" in task["copy_command"]
        running = wait_state(c, task["task_id"], "running")
        assert "timeout 1.5s (" in ant("ls").stdout  # the time left, while it runs
        done = wait_state(c, task["task_id"], "timed_out", timeout=30)
        assert done["exit_code"] == 143 and "longer than its timeout" in done["reason"]
        assert gone(running["pid"])
        page = c.get("/api/v1/tasks", params={"state": "timed_out"}).json()
        assert [t["task_id"] for t in page["tasks"]] == [task["task_id"]]
        assert "timed_out" in c.get("/api/v1/server").json()["ended_states"]
        # Inline, and refused when it is not a duration, changing nothing.
        [inline] = submit(c, "ant_timeout=2h true", n_gpus=1)
        assert inline["timeout"] == 7200 and inline["command"] == "true"
        message = assert_error(
            c.post("/api/v1/tasks", json={"command": "ant_timeout=soon true"}), 400
        )
        assert "ant_timeout" in message
        assert_error(c.post("/api/v1/tasks", json={"command": "true", "timeout": 0}), 400)
    shown = ant.json("submit", "--timeout", "1h30m", "--", "sleep", "0")["tasks"][0]
    assert shown["timeout"] == 5400
    assert re.search(r"\ntimeout +1h30m *\n", ant("show", shown["task_id"]).stdout)
    bad = ant("submit", "--timeout", "soon", "--", "true", ok=False)
    assert bad.returncode == 2 and bad.stderr.splitlines()[-1] == (
        "ant: error: argument --timeout: expected a duration such as 90s, 15m, 2h or 1h30m, "
        "got 'soon'"
    )
    # `ant wait` counts it as not succeeded.
    assert ant("wait", task["task_id"], ok=False).returncode == 1


def test_the_timeout_counts_from_the_start_across_a_restart(
    server_factory: type[AntServer],
) -> None:
    server = server_factory().start()
    with server.client() as c:
        [task] = submit(c, "sleep 60", n_gpus=1, timeout=4)
        running = wait_state(c, task["task_id"], "running")
    server.kill9()
    assert not gone(running["pid"])  # the task runs on while ANT is down
    server.start()
    with server.client() as c:
        done = wait_state(c, task["task_id"], "timed_out", timeout=30)
        assert done["started_at"] == running["started_at"] and done["exit_code"] == 143
    wait_for(lambda: gone(running["pid"]))
