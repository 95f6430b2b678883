"""Kill -9 the server at random moments while a client submits: nothing acknowledged is lost."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.reliability.reality import check_reality, gpu_sharing, kill_processes_of, server_id
from tests.server import AntServer, wait_for

ROUNDS = int(os.environ.get("ANT_CRASH_ROUNDS", "20"))


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# Bounded by its rounds, not by time: 40 s on a quiet machine, more under load.
@pytest.mark.timeout(600)
def test_sigkill_at_random_moments(server_factory: type[AntServer], tmp_path: Path) -> None:
    rng = random.Random(1234)
    server = server_factory(
        fake_gpus=4,
        config={"RECOVERY_auto_restore": True, "MONITORING_refresh_interval": 5},
    )
    acked: set[str] = set()
    seen_pids: set[int] = set()
    runs = tmp_path / "runs.txt"  # every task appends its id when it starts: never twice
    counter = iter(range(10**9))
    for round_no in range(ROUNDS):
        server.start()
        stop = threading.Event()

        def submitter(stop: threading.Event = stop) -> None:
            with httpx.Client(
                base_url=server.url,
                headers={"Authorization": f"Bearer {server.token}"},
                timeout=5,
            ) as c:
                while not stop.is_set():
                    task_id = f"c{next(counter)}"
                    pause = rng.choice(["0", "0.2", "1", "3"])
                    body = {
                        "command": f"echo {task_id} >> {runs}; sleep {pause}",
                        "task_id": task_id,
                        "n_gpus": rng.choice([0, 1, 1, 2]),
                    }
                    try:
                        r = c.post("/api/v1/tasks", json=body)
                    except httpx.HTTPError:
                        return  # the server died mid-request: not acknowledged
                    if r.status_code == 201:
                        acked.add(task_id)

        thread = threading.Thread(target=submitter)
        thread.start()
        time.sleep(rng.uniform(0.1, 0.8))
        with server.client() as c:  # before the kill: note which processes were running
            running_before = {
                t["task_id"]: t["pid"]
                for t in c.get("/api/v1/tasks", params={"state": "running", "limit": 1000}).json()[
                    "tasks"
                ]
            }
        seen_pids.update(running_before.values())
        server.kill9()
        stop.set()
        thread.join()
        # Reality, with ANT dead: no GPU has live processes of two tasks.
        ours = server_id(server.state_dir)
        assert not gpu_sharing(ours), f"round {round_no}: {gpu_sharing(ours)}"

        # With the server dead, the database itself must hold every acknowledged task, once.
        db = sqlite3.connect(server.log_dir / "ant.db")
        ids = [row[0] for row in db.execute("SELECT task_id FROM tasks")]
        db.close()
        assert len(ids) == len(set(ids)), f"round {round_no}: duplicated task"
        missing = acked - set(ids)
        assert not missing, f"round {round_no}: acknowledged tasks lost: {sorted(missing)[:5]}"

        server.start()
        with server.client() as c:
            tasks = c.get("/api/v1/tasks", params={"state": "running", "limit": 1000}).json()[
                "tasks"
            ]
            used: dict[int, str] = {}
            for t in tasks:
                for gpu in t["gpu_ids"]:
                    assert gpu not in used, f"GPU {gpu} given to {used[gpu]} and {t['task_id']}"
                    used[gpu] = t["task_id"]
                seen_pids.add(t["pid"])
                if not alive(t["pid"]):  # it may just have ended: ANT must notice at once
                    wait_for(
                        lambda t=t: (
                            c.get(f"/api/v1/tasks/{t['task_id']}").json()["state"] != "running"
                        ),
                        timeout=5,
                    )
            for task_id, pid in running_before.items():
                task = c.get(f"/api/v1/tasks/{task_id}").json()
                if task["state"] == "running":
                    assert task["pid"] == pid  # re-adopted: the very same process
                else:  # it ended (before or after the restart); a live process is never "lost"
                    assert not alive(pid) and task["state"] != "queued"
            check_reality(c, server.state_dir)
        server.kill9()
    for pid in seen_pids:  # hygiene: nothing of ours keeps running after the test
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    kill_processes_of(server.state_dir)
    started = runs.read_text().split() if runs.exists() else []
    twice = {t for t in started if started.count(t) > 1}
    assert not twice, f"tasks that ran twice: {sorted(twice)[:5]}"
    assert len(acked) > ROUNDS


def test_tasks_started_just_before_a_sigkill_run_once_with_their_own_exit_codes(
    server_factory: type[AntServer], tmp_path: Path
) -> None:
    """P10 records a start without an fsync and a task's pid only once it has run a while (or
    with its end). A SIGKILL right after the starts, before any pid is written: the task that
    ends while ANT is down gets its own exit code from its exit file, the one still running is
    adopted by its marker, and neither runs again."""
    server = server_factory(fake_gpus=2)
    server.start()
    runs = tmp_path / "runs.txt"
    with server.client() as c:
        for task_id, rest in (("short", "sleep 0.5; exit 7"), ("long", "sleep 30")):
            body = {"command": f"echo {task_id} >> {runs}; {rest}", "task_id": task_id}
            assert c.post("/api/v1/tasks", json={**body, "n_gpus": 1}).status_code == 201
        wait_for(
            lambda: runs.exists() and len(runs.read_text().split()) == 2, timeout=10, interval=0.01
        )
    server.kill9()
    db = sqlite3.connect(server.state_dir / "ant.db")
    rows = dict(db.execute("SELECT task_id, pid FROM tasks WHERE state = 'running'").fetchall())
    db.close()
    assert set(rows) == {"short", "long"}
    # Recorded as starting, no pid yet (unless this machine took over 0.2 s to kill ANT: then
    # the pids were written, and what follows must hold all the same).
    print("pids recorded before the kill:", rows)
    exit_file = next((server.log_dir).glob("*/short.exit"))
    wait_for(lambda: exit_file.read_text().strip() == "7", timeout=10)  # ended while ANT was down
    server.start()
    with server.client() as c:
        short = c.get("/api/v1/tasks/short").json()
        assert (short["state"], short["exit_code"]) == ("failed", 7)
        long = c.get("/api/v1/tasks/long").json()
        assert long["state"] == "running" and long["pid"] is not None  # adopted, same process
        assert psutil.Process(long["pid"]).cmdline()[0].endswith("bash")
    assert sorted(runs.read_text().split()) == ["long", "short"]  # each ran once
