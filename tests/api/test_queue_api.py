"""Pause and resume (a drain), through the API and the CLI, across a restart of the server."""

from __future__ import annotations

from tests.api.test_tasks_api import submit, wait_state
from tests.cli.test_cli import Ant
from tests.server import AntServer, wait_for


def test_pause_holds_the_queue_across_a_restart_and_resume_starts_it(
    server_factory: type[AntServer],
) -> None:
    server = server_factory(fake_gpus=2).start()
    flag = server.workdir / "go"
    with server.client() as c:
        [running] = submit(c, f"while [ ! -e {flag} ]; do sleep 0.05; done", n_gpus=1)
        wait_state(c, running["task_id"], "running")
        paused = c.post("/api/v1/queue/pause").json()
        assert paused["paused"] is True and paused["paused_at"] > 0
        assert c.get("/api/v1/queue").json() == paused
        health = c.get("/api/v1/health").json()
        assert health["paused"] is True and health["status"] == "ok"
        [waiting] = submit(c, "true", n_gpus=1)  # a GPU is free: only the pause holds it
        page = c.get("/api/v1/tasks", params={"state": "queued"}).json()
        assert [t["pending_reason"] for t in page["tasks"]] == [
            "the queue is paused: nothing new starts until `ant resume`"
        ]
        flag.touch()
        wait_state(c, running["task_id"], "succeeded")  # running tasks go on
        assert c.get(f"/api/v1/tasks/{waiting['task_id']}").json()["state"] == "queued"
    server.stop()
    server.start()
    ant = Ant(server)
    assert ant.json("health")["paused"] is True
    assert "queue paused since" in ant("health").stdout
    ant("recover", "restore", "--all")
    with server.client() as c:
        assert c.get(f"/api/v1/tasks/{waiting['task_id']}").json()["state"] == "queued"
        assert ant("resume").stdout.startswith("queue resumed")
        wait_state(c, waiting["task_id"], "succeeded")
        assert ant.json("pause")["paused"] is True
        assert ant.json("resume") == {"paused": False, "paused_at": None, "paused_tags": []}
        wait_for(lambda: c.get("/api/v1/health").json()["paused"] is False)
