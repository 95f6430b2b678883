"""POST /api/v1/tasks/preview: what a submit would queue, or its error, with nothing stored;
and copy_command, which submits a task again as a new one."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_tasks_api import assert_error, submit
from tests.server import AntServer


def preview(c: httpx.Client, command: str, **fields: Any) -> dict[str, Any]:
    r = c.post("/api/v1/tasks/preview", json={"command": command, **fields})
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_preview_of_a_single_task_stores_nothing(server: AntServer) -> None:
    with server.client() as c:
        answer = preview(
            c,
            "ant_n_gpus=2 python train.py --port {rand int 4000 4000}",
            task_id="exp-[uuid8]",
            env={"ant_wd": "/data/runs", "FOO": "bar"},
            priority=3,
        )
        assert answer["total"] == 1
        [task] = answer["tasks"]
        assert task["task_id"].startswith("exp-") and len(task["task_id"]) == 12
        assert task["n_gpus"] == 2 and task["n_nodes"] == 1 and task["priority"] == 3
        assert task["command"] == "cd /data/runs && python train.py --port 4000"
        assert task["env"] == {"ant_wd": "/data/runs", "FOO": "bar"}
        assert c.get("/api/v1/tasks").json()["total"] == 0
        # No id is taken: the literal id previewed can be submitted, then no longer previewed.
        assert preview(c, "true", task_id="mine")["tasks"][0]["task_id"] == "mine"
        submit(c, "true", task_id="mine")
        r = c.post("/api/v1/tasks/preview", json={"command": "true", "task_id": "mine"})
        assert "mine" in assert_error(r, 409, "duplicate_task_id")


def test_preview_of_a_multi_submission_lists_every_task(server: AntServer) -> None:
    text = (
        "# three\nant_task_id=a-[phrase] echo a\n"
        "ant_n_gpus=1 ant_n_nodes=2 echo b \\\n  more\necho c"
    )
    with server.client() as c:
        answer = preview(c, text, mode="multi", n_gpus=3)
        assert answer["total"] == 3
        a, b, third = answer["tasks"]
        assert a["task_id"].startswith("a-") and (a["n_gpus"], a["command"]) == (3, "echo a")
        assert (b["n_gpus"], b["n_nodes"], b["command"]) == (1, 2, "echo b   more")
        assert third["command"] == "echo c" and len(third["task_id"]) == 36  # [uuid]
        assert c.get("/api/v1/tasks").json()["total"] == 0
        assert len(submit(c, text, mode="multi", n_gpus=0)) == 3


def test_preview_gives_the_error_a_submit_would(server: AntServer) -> None:
    bodies: list[dict[str, Any]] = [
        {"command": "echo ok\nant_n_gpus=x echo bad", "mode": "multi"},
        {"command": "ant_task_id=x a\nant_task_id=x b", "mode": "multi"},
        {"command": "echo", "task_id": "bad/id"},
        {"command": "   "},
        {"command": "echo", "n_gpus": -1},
        {"command": "echo", "unknown": 1},
    ]
    with server.client() as c:
        for body in bodies:
            previewed = c.post("/api/v1/tasks/preview", json=body)
            submitted = c.post("/api/v1/tasks", json=body)
            assert 400 <= previewed.status_code < 500, (body, previewed.text)
            assert previewed.status_code == submitted.status_code, body
            assert previewed.json() == submitted.json(), body
        assert c.get("/api/v1/tasks").json()["total"] == 0
        assert "line 2" in assert_error(c.post("/api/v1/tasks/preview", json=bodies[0]), 400)


def test_preview_needs_the_token(server: AntServer) -> None:
    r = httpx.post(server.url + "/api/v1/tasks/preview", json={"command": "echo"}, verify=False)
    assert_error(r, 401, "unauthorized")


def test_copy_command_submits_the_task_again_as_a_new_one(server: AntServer) -> None:
    with server.client() as c:
        [literal] = submit(c, "echo one", task_id="literal", n_gpus=1, env={"K": "v w"})
        [templated] = submit(c, "ant_task_id=exp-[phrase] echo two")
        assert literal["copy_command"] == """ant_n_gpus=1 ant_envar='{"K":"v w"}' echo one"""
        assert templated["copy_command"] == "ant_task_id='exp-[phrase]' ant_n_gpus=0 echo two"
        for task in (literal, templated):
            [again] = submit(c, task["copy_command"])
            assert again["task_id"] != task["task_id"]
            assert (again["command"], again["n_gpus"], again["env"]) == (
                task["command"],
                task["n_gpus"],
                task["env"],
            )
        assert again["task_id"].startswith("exp-")
