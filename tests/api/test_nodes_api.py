"""The node-aware fields of the API against a real `ant serve` (fake GPUs on this machine, node ""):
n_nodes in and out, GPU labels, toggles by label, ?rank on the log routes, /api/v1/health."""

from __future__ import annotations

import httpx

from tests.api.test_tasks_api import assert_error, submit, wait_state
from tests.server import AntServer


def test_gangs_ranks_labels_and_health_on_one_machine(server: AntServer) -> None:
    with server.client() as c:
        [task] = submit(c, "echo hi", n_gpus=1, task_id="one")
        done = wait_state(c, "one", "succeeded", "failed")
        assert done["state"] == "succeeded"
        assert (task["n_nodes"], done["n_nodes"], done["nodes"]) == (1, 1, [])
        assert done["gpu_ids"] == [0]
        assert "ant_n_nodes" not in done["copy_command"]

        # Ranks: this machine has rank 0 only.
        assert c.get("/api/v1/tasks/one/log", params={"rank": 0}).json()["text"] == "hi\n"
        for path in ("log", "log/stream", "terminal"):
            message = assert_error(
                c.get(f"/api/v1/tasks/one/{path}", params={"rank": 1}), 400, "invalid_request"
            )
            assert message.startswith("rank: ")
        assert_error(c.get("/api/v1/tasks/one/log", params={"rank": -1}), 400, "invalid_request")
        assert_error(c.get("/api/v1/tasks/nobody/log", params={"rank": 1}), 404)

        # A gang never fits on one machine: queued, and the reason says why.
        [gang] = submit(c, "true", n_nodes=2, n_gpus=1, task_id="gang")
        assert gang["n_nodes"] == 2
        assert wait_state(c, "gang", "queued")["pending_reason"] == (
            "needs 2 nodes but ANT has only 1"
        )
        [inline] = submit(c, "ant_n_nodes=3 true", task_id="inline")
        assert inline["n_nodes"] == 3 and inline["command"] == "true"
        assert "ant_n_nodes=3" in inline["copy_command"]
        for bad in (0, 65, "2", True):
            message = assert_error(
                c.post("/api/v1/tasks", json={"command": "true", "n_nodes": bad}),
                400,
                "invalid_request",
            )
            assert message.startswith("n_nodes")
        message = assert_error(
            c.post("/api/v1/tasks", json={"command": "ant_n_nodes=0 true"}), 400, "task_rejected"
        )
        assert "ant_n_nodes must be a whole number of nodes from 1 to 64" in message

        # GPUs: labels on this machine are their indices; toggles take either.
        gpus = c.get("/api/v1/gpus").json()
        assert [(g["node"], g["local_index"], g["label"]) for g in gpus] == [
            ("", i, str(i)) for i in range(4)
        ]
        r = c.patch("/api/v1/gpus/3", json={"enabled": False})
        assert r.status_code == 200 and r.json()["label"] == "3" and not r.json()["enabled"]
        assert c.patch("/api/v1/gpus/3", json={"enabled": True}).json()["enabled"]
        assert_error(c.patch("/api/v1/gpus/node-b:1", json={"enabled": True}), 404, "gpu_not_found")

        # Health with the token: the executor can start tasks; no nodes on one machine.
        health = c.get("/api/v1/health").json()
        assert health["status"] == "ok"
        assert health["executor"] == {"name": "local", "available": True, "detail": None}
        assert health["nodes"] == []
    assert httpx.get(server.url + "/api/v1/health").status_code == 401
