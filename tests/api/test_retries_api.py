"""Retries through the API and the CLI, on real processes: each attempt's own log and exit code,
the backoff shown while it waits, bad input refused, and a retry that outlives a kill -9."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import httpx

from tests.api.test_tasks_api import assert_error, submit, wait_state
from tests.cli.test_cli import Ant
from tests.server import AntServer, wait_for


def counting(counter: Path, succeed_at: int) -> str:
    """A command that fails until its `succeed_at`-th run (a counter file counts the runs)."""
    path = shlex.quote(str(counter))
    return (
        f"n=$(cat {path} 2>/dev/null || echo 0); n=$((n + 1)); echo $n > {path}; "
        f'echo "run $n"; [ "$n" -ge {succeed_at} ] || exit 7'
    )


def test_fails_twice_then_succeeds_with_three_attempts_and_three_logs(
    server: AntServer, tmp_path: Path
) -> None:
    ant = Ant(server)
    command = counting(tmp_path / "runs", 3)
    [task] = ant.json("submit", "--retries", "3", "--retry-backoff", "0", "--", command)["tasks"]
    task_id = task["task_id"]
    assert (task["retries"], task["retry_on"], task["retry_backoff"]) == (3, ["failure"], 0)
    assert (task["attempt"], task["attempts"]) == (1, [])
    assert "ant_retries=3 ant_retry_backoff=0s" in task["copy_command"]
    # `ant wait` sees no end until the last attempt's: it exits 0, the task succeeded.
    assert ant("wait", task_id).returncode == 0
    with server.client() as c:
        done = c.get(f"/api/v1/tasks/{task_id}").json()
        assert done["state"] == "succeeded" and done["exit_code"] == 0 and done["attempt"] == 3
        attempts = done["attempts"]
        assert [(a["attempt"], a["state"], a["exit_code"]) for a in attempts] == [
            (1, "failed", 7),
            (2, "failed", 7),
            (3, "succeeded", 0),
        ]
        assert all(a["started_at"] <= a["finished_at"] for a in attempts)
        logs = [a["log_path"] for a in attempts]
        assert len(set(logs)) == 3 and logs[2] == done["log_path"]
        assert logs[1].endswith(f"{task_id}.attempt2.log")
        for k in (1, 2, 3):
            log = c.get(f"/api/v1/tasks/{task_id}/log", params={"attempt": k}).json()
            assert log["text"] == f"run {k}\n"
            lines = c.get(f"/api/v1/tasks/{task_id}/log/lines", params={"attempt": k}).json()
            assert lines["lines"] == [f"run {k}"]
        full = c.get(f"/api/v1/tasks/{task_id}/log", params={"attempt": 2, "full": "true"})
        assert (
            full.text == "run 2\n"
            and f"{task_id}.attempt2.log" in full.headers["content-disposition"]
        )
        assert c.get(f"/api/v1/tasks/{task_id}/log").json()["text"] == "run 3\n"  # current
        message = assert_error(
            c.get(f"/api/v1/tasks/{task_id}/log", params={"attempt": 4}), 400, "invalid_request"
        )
        assert "attempts 1 to 3, not 4" in message
    # The CLI: each attempt's log, and `ant show` lists them with their exit codes.
    assert ant("logs", "--attempt", "1", task_id).stdout == "run 1\n"
    shown = ant("show", task_id).stdout
    assert re.search(r"\nretries +3 on failure; backoff none \(doubling\); attempt 3 of 4", shown)
    assert re.search(r"1  failed  exit 7 .*\n *2  failed  exit 7 .*\n *3  succeeded  exit 0", shown)
    assert ant.json("show", task_id)["attempts"] == attempts
    bad = ant("logs", "--attempt", "9", task_id, ok=False)
    assert bad.returncode != 0 and "attempts 1 to 3, not 9" in bad.stderr
    # A rename takes every attempt's log with it: each is read under the new id.
    ant("rename", task_id, "renamed-retries")
    renamed = ant.json("show", "renamed-retries")
    moved = [a["log_path"] for a in renamed["attempts"]]
    assert moved[1].endswith("renamed-retries.attempt2.log") and moved[2] == renamed["log_path"]
    assert all(Path(p).is_file() for p in moved) and not any(Path(p).exists() for p in logs)
    for k in (1, 2, 3):
        assert ant("logs", "--attempt", str(k), "renamed-retries").stdout == f"run {k}\n"


def test_the_backoff_is_shown_while_it_waits_and_bad_input_is_refused(
    server: AntServer,
) -> None:
    ant = Ant(server)
    with server.client() as c:
        [task] = submit(c, "ant_retries=1 ant_retry_backoff=1h exit 3", n_gpus=0)
        assert (task["retries"], task["retry_backoff"], task["command"]) == (1, 3600, "exit 3")
        waiting = wait_for_attempt(c, task["task_id"], 2)
        assert waiting["state"] == "queued" and waiting["exit_code"] is None
        assert waiting["retry_at"] >= waiting["attempts"][0]["finished_at"] + 3599
        why = "(attempt 2 of 2; attempt 1 failed with exit 3)"
        assert waiting["reason"] == f"retrying in 1h {why}"
        assert waiting["pending_reason"].startswith("retrying in ")
        assert waiting["pending_reason"].endswith(why)
        assert why in ant("ls").stdout
        # Cancelled while it waits: it ends killed, with the attempt it ran.
        killed = c.post(f"/api/v1/tasks/{task['task_id']}/kill").json()
        assert killed["state"] == "killed" and len(killed["attempts"]) == 1
        # Refused, changing nothing.
        before = c.get("/api/v1/tasks").json()["total"]
        for body in (
            {"command": "true", "retries": -1},
            {"command": "true", "retries": 101},
            {"command": "true", "retry_on": ["oom"]},
            {"command": "true", "retry_on": []},
            {"command": "true", "retry_backoff": -5},
            {"command": "ant_retries=many true"},
            {"command": "ant_retry_on=failure,oom true"},
        ):
            assert_error(c.post("/api/v1/tasks", json=body), 400)
        assert c.get("/api/v1/tasks").json()["total"] == before
        [every] = submit(c, "true", retries=2, retry_on=["timeout", "lost"], retry_backoff=5)
        assert every["retry_on"] == ["lost", "timeout"]
        preview = c.post("/api/v1/tasks/preview", json={"command": "ant_retries=4 true"}).json()
        assert preview["tasks"][0]["retries"] == 4
    bad = ant("submit", "--retry-on", "failure,oom", "--", "true", ok=False)
    assert bad.returncode == 2 and bad.stderr.splitlines()[-1] == (
        "ant: error: argument --retry-on: expected one or more of failure, lost, timeout, "
        "got 'failure,oom'"
    )


def wait_for_attempt(c: httpx.Client, task_id: str, attempt: int) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        task: dict[str, Any] = c.get(f"/api/v1/tasks/{task_id}").json()
        return task if task["attempt"] >= attempt else None

    return wait_for(check, 20)  # type: ignore[no-any-return]


def test_a_retry_waiting_at_a_kill_9_still_runs_after_the_restart(
    server_factory: type[AntServer], tmp_path: Path
) -> None:
    server = server_factory().start()
    command = counting(tmp_path / "runs", 2)
    with server.client() as c:
        [task] = submit(c, command, retries=1, retry_backoff=2)
        waiting = wait_for_attempt(c, task["task_id"], 2)
        assert waiting["state"] == "queued"
    server.kill9()
    server.start()
    with server.client() as c:
        # Not held (as queued tasks are after a restart): the series goes on by itself.
        done = wait_state(c, task["task_id"], "succeeded", "held", timeout=30)
        assert done["state"] == "succeeded" and done["attempt"] == 2
        assert [a["exit_code"] for a in done["attempts"]] == [7, 0]
        assert done["retry_at"] is None
