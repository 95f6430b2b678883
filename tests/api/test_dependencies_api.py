"""Dependencies (`after`) through the API and the CLI, on real processes, across a kill -9 of
the server."""

from __future__ import annotations

import re

from tests.api.test_tasks_api import assert_error, submit, wait_state
from tests.cli.test_cli import Ant
from tests.server import AntServer


def test_a_chain_waits_runs_and_fails_through_the_api(server: AntServer) -> None:
    with server.client() as c:
        submit(c, "sleep 1; exit 3", task_id="prep")
        [child] = submit(c, "true", task_id="train", after=[{"task_id": "prep"}])
        assert child["after"] == [{"task_id": "prep", "condition": "ok"}]
        assert "ant_after=prep" in child["copy_command"]
        queued = c.get("/api/v1/tasks/train").json()
        assert queued["state"] == "queued" and queued["queue_position"] is None
        assert queued["pending_reason"] in (
            "waiting for prep (running)",
            "waiting for prep (queued)",
        )
        submit(c, "true", task_id="cleanup", after=[{"task_id": "prep", "condition": "fail"}])
        done = wait_state(c, "train", "dependency_failed", timeout=30)
        assert done["reason"] == "prep ended failed; this task needed it to succeed"
        assert done["started_at"] is None and done["exit_code"] is None
        assert wait_state(c, "cleanup", "succeeded", timeout=30)["after"][0]["condition"] == "fail"
        page = c.get("/api/v1/tasks", params={"state": "dependency_failed"}).json()
        assert [t["task_id"] for t in page["tasks"]] == ["train"]
        sorted_page = c.get(
            "/api/v1/tasks", params={"state": "dependency_failed", "sort": "task_id"}
        ).json()
        assert [t["task_id"] for t in sorted_page["tasks"]] == ["train"]
        assert "dependency_failed" in c.get("/api/v1/server").json()["ended_states"]


def test_unknown_ids_and_cycles_are_refused_with_400(server: AntServer) -> None:
    with server.client() as c:
        message = assert_error(
            c.post("/api/v1/tasks", json={"command": "true", "after": [{"task_id": "nope"}]}),
            400,
            "task_rejected",
        )
        assert "'nope'" in message and "no such task" in message
        cycle = "ant_task_id=a ant_after=b true\nant_task_id=b ant_after=a true\n"
        message = assert_error(
            c.post("/api/v1/tasks", json={"command": cycle, "mode": "multi"}), 400
        )
        assert "cycle" in message
        bad = {"command": "true", "after": [{"task_id": "x", "condition": "maybe"}]}
        assert_error(c.post("/api/v1/tasks", json=bad), 400)
        assert_error(c.post("/api/v1/tasks", json={"command": "ant_after=../x true"}), 400)
        assert c.get("/api/v1/tasks").json()["total"] == 0  # nothing was queued
        # The preview says the same, and shows a good one's dependencies.
        preview = c.post(
            "/api/v1/tasks/preview",
            json={"command": "ant_task_id=a true\nant_after=[prev]:any true", "mode": "multi"},
        ).json()
        assert preview["tasks"][1]["after"] == [{"task_id": "a", "condition": "any"}]


def test_multi_mode_chains_lines_and_restart_with_dependents(server: AntServer) -> None:
    text = "ant_task_id=s1 exit 1\nant_task_id=s2 ant_after=[prev] true\n"
    text += "ant_task_id=s3 ant_after=[prev] true\n"
    with server.client() as c:
        tasks = submit(c, text, mode="multi")
        assert [t["after"] for t in tasks] == [
            [],
            [{"task_id": "s1", "condition": "ok"}],
            [{"task_id": "s2", "condition": "ok"}],
        ]
        wait_state(c, "s3", "dependency_failed", timeout=30)
        assert c.get("/api/v1/tasks/s3").json()["reason"].startswith("s2 ended dependency_failed")
        plain = c.post("/api/v1/tasks/s1/restart").json()
        assert plain["task_id"] == "s1-restart-1"
        wait_state(c, "s1-restart-1", "failed", timeout=30)
        assert c.get("/api/v1/tasks/s2").json()["restarted_as"] is None  # not asked
        r = c.post("/api/v1/tasks/s1-restart-1/restart", params={"with_dependents": "true"})
        assert r.status_code == 201, r.text
        assert r.json()["task_id"] == "s1-restart-2"
        s2 = c.get("/api/v1/tasks/s2-restart-1").json()
        assert s2["after"] == [{"task_id": "s1-restart-2", "condition": "ok"}]
        s3 = c.get("/api/v1/tasks/s3-restart-1").json()
        assert s3["after"] == [{"task_id": "s2-restart-1", "condition": "ok"}]
        wait_state(c, "s3-restart-1", "dependency_failed", timeout=30)  # s1 fails again


def test_the_cli_submits_shows_and_restarts_dependencies(server: AntServer) -> None:
    ant = Ant(server)
    ant("submit", "--id", "first", "--", "sleep", "30")
    bad = ant("submit", "--after", "gone", "--", "true", ok=False)
    assert bad.returncode == 7 and len(bad.stderr.strip().splitlines()) == 1
    assert "'gone'" in bad.stderr and "no such task" in bad.stderr
    usage = ant("submit", "--after", "first:maybe", "--", "true", ok=False)
    assert usage.returncode == 2 and usage.stderr.splitlines()[-1] == (
        "ant: error: argument --after: expected ID, ID:ok, ID:any or ID:fail, got 'first:maybe'"
    )
    [task] = ant.json("submit", "--id", "second", "--after", "first:any", "--", "true")["tasks"]
    assert task["after"] == [{"task_id": "first", "condition": "any"}]
    assert re.search(r"\nafter +first \(any\) *\n", ant("show", "second").stdout)
    assert "waiting for first (running, to end)" in ant("ls").stdout
    listed = ant.json("ls", "--state", "queued")["tasks"]
    assert listed[0]["after"] == [{"task_id": "first", "condition": "any"}]
    multi = "ant_task_id=m1 exit 2\nant_task_id=m2 ant_after=[prev] true\n"
    ant("submit", "--multi", "-", stdin=multi)
    with server.client() as c:
        wait_state(c, "m2", "dependency_failed", timeout=30)
    assert re.search(r"m2 +dependency_failed", ant("ls").stdout)
    out = ant("restart", "m1", "--with-dependents").stdout
    assert "m1 -> m1-restart-1" in out
    with server.client() as c:
        assert c.get("/api/v1/tasks/m2").json()["restarted_as"] == "m2-restart-1"
    assert ant("wait", "m2", ok=False).returncode == 1  # an ended state, not a success
    for wrong in (["--tag", "x"], []):  # by id only: a usage error (exit 2), nothing done
        bad = ant("restart", "--with-dependents", *wrong, ok=False)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr
        assert bad.stderr.strip().splitlines()[-1].endswith("given by id, not a tag")


def test_waits_survive_a_kill_9_of_the_server(server_factory: type[AntServer]) -> None:
    server = server_factory(config={"RECOVERY_auto_restore": True}).start()
    with server.client() as c:
        submit(c, "sleep 4", task_id="parent")
        submit(c, "true", task_id="child", after=[{"task_id": "parent"}])
        wait_state(c, "parent", "running")
    server.kill9()
    server.start()
    with server.client() as c:
        child = c.get("/api/v1/tasks/child").json()
        assert child["state"] == "queued" and child["pending_reason"] == (
            "waiting for parent (running)"
        )
        wait_state(c, "child", "succeeded", timeout=30)
