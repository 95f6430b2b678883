"""Moving queued tasks and renaming tasks, through the API and the CLI of a real server, across
a restart of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.api.test_tasks_api import assert_error, submit, wait_state
from tests.cli.test_cli import Ant
from tests.server import AntServer


def queue(c: httpx.Client) -> list[str]:
    """The queued tasks as listed, checked against the positions the listing gives."""
    tasks = c.get("/api/v1/tasks", params={"state": "queued"}).json()["tasks"]
    assert [t["queue_position"] for t in tasks] == list(range(1, len(tasks) + 1))
    return [t["task_id"] for t in tasks]


def move(c: httpx.Client, task_id: str, **place: Any) -> httpx.Response:
    return c.post(f"/api/v1/tasks/{task_id}/move", json=place)


def test_moves_reorder_the_queue_for_good_and_tasks_start_in_that_order(
    server_factory: type[AntServer],
) -> None:
    server = server_factory(fake_gpus=1).start()
    flag = server.workdir / "go"
    with server.client() as c:
        submit(c, f"while [ ! -e {flag} ]; do sleep 0.05; done", n_gpus=1, task_id="blocker")
        wait_state(c, "blocker", "running")
        for name in "abcd":
            submit(c, "true", n_gpus=1, task_id=name)
        assert queue(c) == list("abcd")
        r = move(c, "d", to="top")
        assert r.status_code == 200, r.text
        assert r.json()["task_id"] == "d" and r.json()["queue_position"] == 1
        assert queue(c) == list("dabc")
        assert move(c, "a", after="c").json()["queue_position"] == 4
        assert move(c, "b", before="d").json()["queue_position"] == 1
        assert move(c, "c", to="bottom").status_code == 200
        assert queue(c) == list("bdac")
        # Refusals change nothing.
        assert "running" in assert_error(move(c, "blocker", to="top"), 409, "invalid_state")
        assert_error(move(c, "a", before="blocker"), 409, "invalid_state")
        assert_error(move(c, "nope", to="top"), 404, "task_not_found")
        assert_error(move(c, "a", after="nope"), 404, "task_not_found")
        assert_error(move(c, "a", before="a"), 400)
        assert "exactly one" in assert_error(move(c, "a"), 400, "invalid_request")
        assert_error(move(c, "a", before="b", to="top"), 400, "invalid_request")
        assert_error(move(c, "a", to="middle"), 400, "invalid_request")
        assert_error(move(c, "a", before=3), 400, "invalid_request")
        assert queue(c) == list("bdac")
    server.stop(kill_tasks=False)  # the blocker runs on: the restarted server adopts it
    server.start()
    ant = Ant(server)
    ant("recover", "restore", "--all")
    with server.client() as c:
        assert queue(c) == list("bdac")  # kept across the restart
        moved = ant.json("move", "c", "--after", "b")["tasks"][0]
        assert moved["task_id"] == "c" and moved["queue_position"] == 2
        assert ant("move", "a", "--top").stdout == "moved a to the top (position 1)\n"
        assert queue(c) == list("abcd")
        usage = ant("move", "a", ok=False)
        assert usage.returncode == 2 and usage.stderr.splitlines()[-1].startswith("ant: error:")
        assert ant("move", "a", "--top", "--bottom", ok=False).returncode == 2
        gone = ant("move", "nope", "--top", ok=False)
        assert gone.returncode == 5 and len(gone.stderr.splitlines()) == 1
        flag.touch()
        wait_state(c, "blocker", "succeeded", "killed", "lost")
        done = [wait_state(c, t, "succeeded", timeout=30) for t in "abcd"]
        starts = [t["started_at"] for t in done]
        assert starts == sorted(starts)  # one GPU: they ran one after the other, in that order


def log_files(server: AntServer) -> list[str]:
    return sorted(p.name for p in Path(server.log_dir).rglob("*") if p.is_file())


def test_rename_moves_the_log_and_refuses_what_it_must(server_factory: type[AntServer]) -> None:
    server = server_factory(fake_gpus=1).start()
    flag = server.workdir / "go"
    ant = Ant(server)
    with server.client() as c:
        submit(c, "echo hello from the first", task_id="first")
        wait_state(c, "first", "succeeded")
        r = c.post("/api/v1/tasks/first/rename", json={"new_id": "second"})
        assert r.status_code == 200, r.text
        renamed = r.json()
        assert renamed["task_id"] == "second" and renamed["state"] == "succeeded"
        assert renamed["log_path"].endswith("/second.log")
        log = c.get("/api/v1/tasks/second/log").json()
        assert "hello from the first" in log["text"]
        assert_error(c.get("/api/v1/tasks/first"), 404, "task_not_found")
        assert "first.log" not in log_files(server) and "second.log" in log_files(server)
        # A running task and a queued one behind it.
        submit(c, f"while [ ! -e {flag} ]; do sleep 0.05; done", n_gpus=1, task_id="runs")
        wait_state(c, "runs", "running")
        submit(c, "echo queued", n_gpus=1, task_id="waits")
        message = assert_error(
            c.post("/api/v1/tasks/runs/rename", json={"new_id": "x"}), 409, "invalid_state"
        )
        assert "running" in message
        taken = c.post("/api/v1/tasks/waits/rename", json={"new_id": "second"})
        assert "'second' is taken" in assert_error(taken, 409, "duplicate_task_id")
        bad = c.post("/api/v1/tasks/waits/rename", json={"new_id": "no/slash"})
        assert "may only contain" in assert_error(bad, 400, "task_rejected")
        assert_error(c.post("/api/v1/tasks/nope/rename", json={"new_id": "x"}), 404)
        assert_error(c.post("/api/v1/tasks/waits/rename", json={"new_id": 5}), 400)
        assert_error(c.post("/api/v1/tasks/waits/rename", json={}), 400)
        assert queue(c) == ["waits"]
        assert ant("rename", "waits", "waits-2").stdout == "renamed waits -> waits-2\n"
        assert queue(c) == ["waits-2"]
        refused = ant("rename", "runs", "x", ok=False)
        assert refused.returncode == 6 and "running" in refused.stderr
        assert len(refused.stderr.splitlines()) == 1
        assert ant.json("rename", "second", "third")["tasks"][0]["task_id"] == "third"
        flag.touch()
        done = wait_state(c, "waits-2", "succeeded")
        assert done["log_path"].endswith("/waits-2.log")
        assert "queued" in c.get("/api/v1/tasks/waits-2/log").json()["text"]
    server.stop()
    server.start()
    with server.client() as c:  # the new names are what the store keeps
        assert c.get("/api/v1/tasks/third").json()["state"] == "succeeded"
        assert "hello from the first" in c.get("/api/v1/tasks/third/log").json()["text"]
        assert_error(c.get("/api/v1/tasks/second"), 404)
