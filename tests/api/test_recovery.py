"""Restarts: re-adoption after SIGTERM and kill -9, exits while down, lost/held/restore/forget."""

from __future__ import annotations

import os
import signal
from typing import Any

import psutil

from tests.api.test_tasks_api import assert_error, submit, wait_state
from tests.server import AntServer, wait_for


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigterm_keeps_tasks_running_and_restart_readopts(
    server_factory: type[AntServer],
) -> None:
    server = server_factory(fake_gpus=2).start()
    flag = server.workdir / "go"
    with server.client() as c:
        [task] = submit(
            c, f"while [ ! -e {flag} ]; do sleep 0.05; done; echo done; exit 5", n_gpus=1
        )
        running = wait_state(c, task["task_id"], "running")
    assert server.sigterm() == 0
    assert "left 1 running task(s) running" in server.output()
    assert alive(running["pid"])
    server.start()
    with server.client() as c:
        again = c.get(f"/api/v1/tasks/{task['task_id']}").json()
        assert again["state"] == "running" and again["gpu_ids"] == running["gpu_ids"]
        gpu = c.get("/api/v1/gpus").json()[running["gpu_ids"][0]]
        assert gpu["task_ids"] == [task["task_id"]]
        flag.touch()
        done = wait_state(c, task["task_id"], "failed")
        assert done["exit_code"] == 5
        assert "done" in c.get(f"/api/v1/tasks/{task['task_id']}/log").json()["text"]


def test_kill9_then_restart_readopts_and_records_exit(server_factory: type[AntServer]) -> None:
    server = server_factory().start()
    flag = server.workdir / "go"
    with server.client() as c:
        [task] = submit(c, f"echo before; while [ ! -e {flag} ]; do sleep 0.05; done; echo after")
        running = wait_state(c, task["task_id"], "running")
        [queued] = submit(c, "true", n_gpus=8)  # can never start: held after the restart
    server.kill9()
    assert alive(running["pid"])
    server.start()
    with server.client() as c:
        assert c.get(f"/api/v1/tasks/{task['task_id']}").json()["state"] == "running"
        assert c.get(f"/api/v1/tasks/{queued['task_id']}").json()["state"] == "held"
        flag.touch()
        done = wait_state(c, task["task_id"], "succeeded")
        assert done["exit_code"] == 0
        text = c.get(f"/api/v1/tasks/{task['task_id']}/log").json()["text"]
        assert text.split() == ["before", "after"]


def test_task_that_ends_while_ant_is_down_gets_its_true_exit_code(
    server_factory: type[AntServer],
) -> None:
    server = server_factory().start()
    flag = server.workdir / "go"
    with server.client() as c:
        [task] = submit(c, f"while [ ! -e {flag} ]; do sleep 0.05; done; exit 3")
        running = wait_state(c, task["task_id"], "running")
    server.kill9()
    flag.touch()
    wait_for(lambda: not alive(running["pid"]))
    server.start()
    with server.client() as c:
        done = c.get(f"/api/v1/tasks/{task['task_id']}").json()
        assert done["state"] == "failed" and done["exit_code"] == 3
        assert "while ANT was down" in done["reason"]


def test_vanished_task_is_lost_and_can_be_restored(server_factory: type[AntServer]) -> None:
    server = server_factory().start()
    with server.client() as c:
        [task] = submit(c, "sleep 1000", task_id="vanish", n_gpus=1)
        running = wait_state(c, "vanish", "running")
    server.kill9()
    os.killpg(os.getpgid(running["pid"]), signal.SIGKILL)  # as if the machine rebooted
    wait_for(lambda: not alive(running["pid"]))
    server.start()
    with server.client() as c:
        lost = c.get("/api/v1/tasks/vanish").json()
        assert lost["state"] == "lost" and lost["exit_code"] is None
        rec = c.get("/api/v1/recovery").json()
        assert [t["task_id"] for t in rec["last_session"]] == ["vanish"]
        assert rec["earlier_sessions"] == []
        r = c.post("/api/v1/recovery/restore", json={"task_ids": ["vanish"]})
        assert r.status_code == 200 and r.json()["tasks"][0]["task_id"] == "vanish"
        again = wait_state(c, "vanish", "running")
        assert again["command"] == task["command"]
        c.post("/api/v1/tasks/vanish/kill")
        wait_state(c, "vanish", "killed")
        assert c.get("/api/v1/recovery").json()["last_session"] == []


def test_held_tasks_by_session_restore_and_forget(server_factory: type[AntServer]) -> None:
    server = server_factory(fake_gpus=1).start()
    with server.client() as c:
        submit(c, "sleep 1000", task_id="hog", n_gpus=1)
        wait_state(c, "hog", "running")
        submit(c, "echo a", task_id="old-1", n_gpus=1)
    server.stop()  # stop() also kills the hog's process group
    server.start()
    with server.client() as c:
        assert c.get("/api/v1/tasks/old-1").json()["state"] == "held"
        submit(c, "sleep 1000", task_id="hog2", n_gpus=1)
        wait_state(c, "hog2", "running")
        submit(c, "echo b", task_id="new-1", n_gpus=1)
        submit(c, "echo c", task_id="new-2", n_gpus=1)
    server.stop()
    server.start()
    with server.client() as c:
        rec = c.get("/api/v1/recovery").json()
        last = sorted(t["task_id"] for t in rec["last_session"])
        earlier = sorted(t["task_id"] for t in rec["earlier_sessions"])
        assert "new-1" in last and "new-2" in last and "old-1" in earlier
        assert all(t["state"] in ("held", "lost") for t in rec["last_session"])
        r = c.post("/api/v1/recovery/restore", json={"task_ids": ["new-1", "old-1"]})
        assert sorted(t["task_id"] for t in r.json()["tasks"]) == ["new-1", "old-1"]
        for task_id in ("new-1", "old-1"):
            wait_state(c, task_id, "succeeded")
        assert c.delete("/api/v1/recovery/new-2").json() == {"task_id": "new-2", "deleted": True}
        assert_error(c.get("/api/v1/tasks/new-2"), 404)
        assert_error(c.delete("/api/v1/recovery/new-1"), 409, "invalid_state")
        assert_error(c.delete("/api/v1/recovery/none"), 404)
        assert_error(c.post("/api/v1/recovery/restore", json={"task_ids": ["new-1"]}), 409)
        assert_error(c.post("/api/v1/recovery/restore", json={"task_ids": []}), 400)


def test_recovery_disabled_restores_queue_automatically(server_factory: type[AntServer]) -> None:
    server = server_factory(fake_gpus=1, config={"RECOVERY_enabled": False}).start()
    with server.client() as c:
        submit(c, "true", task_id="far", n_gpus=3)
    server.stop()
    server.start()
    with server.client() as c:
        task: dict[str, Any] = c.get("/api/v1/tasks/far").json()
        assert task["state"] == "queued"
        assert c.get("/api/v1/recovery").json() == {"last_session": [], "earlier_sessions": []}


def test_terminate_on_shutdown_kills_every_task_process(server_factory: type[AntServer]) -> None:
    server = server_factory(config={"RUNNER_on_shutdown": "terminate"}).start()
    with server.client() as c:
        [task] = submit(c, "bash -c 'sleep 1000 & sleep 1000 & wait'", n_gpus=1)
        wait_state(c, task["task_id"], "running")
        wait_for(lambda: len(server.task_pids()) >= 4)
    pids = server.task_pids()
    assert server.sigterm() == 0
    assert "terminated 1 running task(s)" in server.output()
    wait_for(lambda: not any(alive(p) for p in pids))
    server.start()
    with server.client() as c:
        assert c.get(f"/api/v1/tasks/{task['task_id']}").json()["state"] == "killed"
