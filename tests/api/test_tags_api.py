"""Tags through the API and the CLI, on a real server: submit with tags, filter by them, act on
a tag's tasks, bad tags refused (changing nothing), and pausing a tag across a restart."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_tasks_api import assert_error, submit, wait_state
from tests.cli.test_cli import Ant
from tests.server import AntServer, wait_for


def listed(c: httpx.Client, **params: Any) -> list[str]:
    page = c.get("/api/v1/tasks", params=params).json()
    assert page["total"] == len(page["tasks"])
    return sorted(t["task_id"] for t in page["tasks"])


def test_tags_filter_and_validation(server: AntServer) -> None:
    with server.client() as c:
        [a] = submit(c, "true", task_id="a", tags=["sweep", "lr-1"])
        assert a["tags"] == ["sweep", "lr-1"] and "ant_tags=sweep,lr-1" in a["copy_command"]
        submit(c, "ant_tags=lr-2 true", task_id="b", tags=["sweep"])
        submit(c, "true", task_id="c")
        for task_id in "abc":
            wait_state(c, task_id, "succeeded")
        assert listed(c, tag="sweep") == ["a", "b"]
        assert listed(c, tag=["sweep", "lr-2"]) == ["b"]  # repeated: carrying all of them
        assert listed(c, tag="sweep", state="succeeded", sort="task_id") == ["a", "b"]
        assert listed(c, tag="nobody") == []
        tags = {t["tag"]: t["tasks"] for t in c.get("/api/v1/tags").json()["tags"]}
        assert tags == {"sweep": 2, "lr-1": 1, "lr-2": 1}
        # Bad tags: 400 with the error shape, and nothing stored.
        for bad in (["has space"], ["-x"], ["x" * 65], [f"t{i}" for i in range(17)], [1]):
            assert_error(c.post("/api/v1/tasks", json={"command": "true", "tags": bad}), 400)
        message = assert_error(c.post("/api/v1/tasks", json={"command": "ant_tags=a/b true"}), 400)
        assert "not a valid tag" in message
        assert_error(c.get("/api/v1/tasks", params={"tag": "no way"}), 400, "invalid_request")
        assert_error(c.post("/api/v1/tags/no%20way/kill"), 400)
        assert_error(c.post("/api/v1/queue/pause", json={"tag": "no way"}), 400)
        assert_error(c.post("/api/v1/queue/pause", json={"tag": 3}), 400)
        assert c.get("/api/v1/tasks").json()["total"] == 3
        assert c.get("/api/v1/queue").json()["paused_tags"] == []


def test_bulk_actions_by_tag_through_the_api_and_the_cli(server: AntServer) -> None:
    ant = Ant(server)
    flag = server.workdir / "go"
    wait = f"while [ ! -e {flag} ]; do sleep 0.05; done"
    with server.client() as c:
        submit(c, wait, task_id="runs", tags=["sw"], n_gpus=1)
        wait_state(c, "runs", "running")
        submit(c, "true", task_id="waits", tags=["sw"], n_gpus=99)  # never fits: stays queued
        submit(c, wait, task_id="other", n_gpus=1)
        killed = c.post("/api/v1/tags/sw/kill").json()
        assert killed["action"] == "kill" and sorted(killed["task_ids"]) == ["runs", "waits"]
        assert killed["count"] == 2 and killed["skipped"] == 0
        assert wait_state(c, "runs", "killed")["exit_code"] is not None
        assert c.get("/api/v1/tasks/other").json()["state"] in ("queued", "running")
    said = ant("restart", "--tag", "sw").stdout
    assert said.strip() == "restarted 2 tasks tagged sw"
    with server.client() as c:
        assert listed(c, tag="sw", state="queued,running,succeeded,failed") == [
            "runs-restart-1",
            "waits-restart-1",
        ]
    again = ant.json("restart", "--tag", "sw")
    assert again["count"] == 0 and again["skipped"] == 4  # each has its copy already
    flag.touch()
    assert ant("kill", "--tag", "sw").stdout.startswith("killed ")
    gone = ant.json("rm", "--tag", "sw")
    assert gone["action"] == "delete" and gone["count"] == 4
    assert ant.json("ls", "--tag", "sw") == {"tasks": [], "total": 0}
    assert ant("rm", "--tag", "sw", "x", ok=False).returncode == 2
    bad = ant("kill", "--tag", "a b", ok=False)
    assert bad.returncode == 2 and "not a valid tag" in bad.stderr


def test_pausing_a_tag_holds_only_its_tasks_across_a_restart(
    server_factory: type[AntServer],
) -> None:
    server = server_factory(fake_gpus=2).start()
    ant = Ant(server)
    said = ant("pause", "--tag", "sweep-lr").stdout
    assert said.startswith("tag sweep-lr paused since ")
    shown = ant.json("submit", "--tag", "sweep-lr", "--tag", "x", "-g", "1", "--", "true")
    [waiting] = shown["tasks"]
    assert waiting["tags"] == ["sweep-lr", "x"]
    ant("submit", "--id", "free", "-g", "1", "--", "true")
    with server.client() as c:
        wait_state(c, "free", "succeeded")  # the rest of the queue goes on
        task = c.get(f"/api/v1/tasks/{waiting['task_id']}").json()
        assert task["state"] == "queued"
        assert task["pending_reason"] == (
            "tag sweep-lr is paused: it starts after `ant resume --tag sweep-lr`"
        )
        health = c.get("/api/v1/health").json()
        assert health["paused"] is False
        assert [p["tag"] for p in health["paused_tags"]] == ["sweep-lr"]
    assert "tag sweep-lr paused since" in ant("health").stdout
    server.stop()
    server.start()
    # held after the restart: restored by tag, and still waiting for its tag
    assert ant.json("recover", "restore", "--tag", "nobody")["count"] == 0
    restored = ant("restore", "--tag", "sweep-lr").stdout
    assert restored.strip() == "restored 1 task tagged sweep-lr"
    with server.client() as c:
        assert c.get(f"/api/v1/tasks/{waiting['task_id']}").json()["state"] == "queued"
        paused = c.get("/api/v1/queue").json()["paused_tags"]
        assert [p["tag"] for p in paused] == ["sweep-lr"]
        assert ant("resume", "--tag", "sweep-lr").stdout.startswith("tag sweep-lr resumed")
        wait_state(c, waiting["task_id"], "succeeded")
        wait_for(lambda: c.get("/api/v1/health").json()["paused_tags"] == [])
