"""Races and store faults against a real `ant serve`: what the store says must match reality.

Each scenario ends with check_reality: ANT's self-check (store vs memory vs live processes) finds
nothing, and no GPU has live processes of two tasks.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.test_tasks_api import submit, wait_state
from tests.reliability.reality import check_reality, gpu_sharing, kill_processes_of, server_id
from tests.server import AntServer, wait_for
from tests.unit.executor_requests import fill


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    for state in (tmp_path / "logs", tmp_path / "state"):
        if (state / "ant.db").exists():
            kill_processes_of(state)


def db_states(state_dir: Path) -> dict[str, str]:
    db = sqlite3.connect(state_dir / "ant.db")
    try:
        return dict(db.execute("SELECT task_id, state FROM tasks").fetchall())
    finally:
        db.close()


class Lock:
    """Another process holds the database's write lock (as an open `sqlite3 ant.db` shell can)."""

    def __init__(self, state_dir: Path) -> None:
        self.db = sqlite3.connect(state_dir / "ant.db", isolation_level=None, timeout=30)

    def __enter__(self) -> Lock:
        self.db.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.execute("ROLLBACK")
        self.db.close()


def test_deletes_racing_task_ends(server_factory: type[AntServer]) -> None:
    """Found: deleting a task in the instant it finished made every later save fail, and after a
    restart finished tasks came back held, offered to run again."""
    server = server_factory(fake_gpus=4).start()
    n = 300
    with server.client() as c:
        text = "\n".join(f"ant_task_id=t{i} ant_n_gpus={i % 2} true" for i in range(n))
        submit(c, text, mode="multi")
        stop = threading.Event()
        deleted: set[str] = set()

        def deleter(seed: int) -> None:
            rng = random.Random(seed)
            with server.client() as mine:
                while not stop.is_set():
                    task_id = f"t{rng.randrange(n)}"
                    r = mine.delete(f"/api/v1/tasks/{task_id}")
                    assert r.status_code in (200, 404, 409), r.text
                    if r.status_code == 200:
                        deleted.add(task_id)

        threads = [threading.Thread(target=deleter, args=(seed,)) for seed in range(4)]
        for t in threads:
            t.start()

        def drained() -> bool:
            page = c.get("/api/v1/tasks", params={"state": "queued,running"}).json()
            return page["total"] == 0

        try:
            wait_for(drained, timeout=120, interval=0.1)
        finally:
            stop.set()
            for t in threads:
                t.join()
        check_reality(c, server.state_dir)
    assert "could not record" not in server.output()
    assert "task change" not in server.output()
    server.stop()
    rows = db_states(server.state_dir)
    assert set(rows) == {f"t{i}" for i in range(n)} - deleted
    assert set(rows.values()) <= {"succeeded"}, sorted(set(rows.values()))
    server.start()
    with server.client() as c:
        info = c.get("/api/v1/server").json()
        assert info["recovery"]["held"] == 0  # nothing that already ran is offered again
        check_reality(c, server.state_dir)


def test_a_locked_database_never_puts_two_tasks_on_one_gpu(
    server_factory: type[AntServer],
) -> None:
    """Found: a save that failed while a task launched (database locked > 5 s) was dropped; after
    SIGKILL + restart the task was held while its process still ran on GPUs 0,1 and another task
    was given GPUs 0,1."""
    server = server_factory(fake_gpus=4, config={"STORE_retry_seconds": 1})
    server.start()
    state = server.state_dir
    ours = server_id(state)
    with server.client() as c:
        submit(c, "sleep 0.5", n_gpus=2, task_id="short")
        submit(c, "sleep 60", n_gpus=2, task_id="long")
        submit(c, "sleep 60", n_gpus=2, task_id="next")  # waits for "short"'s GPUs
        wait_state(c, "short", "running")
        with Lock(state):
            time.sleep(2)  # "short" ends meanwhile: its end cannot be recorded
            r = c.post("/api/v1/tasks", json={"command": "true"})
            assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
            assert not gpu_sharing(ours)
            running = c.get("/api/v1/tasks/next").json()
            assert running["state"] == "queued"  # not started on GPUs not yet recorded free
            server.kill9()  # and ANT dies while the database is still locked
        assert not gpu_sharing(ours)
    server.start()
    with server.client() as c:
        states = {t["task_id"]: t["state"] for t in c.get("/api/v1/tasks").json()["tasks"]}
        assert states["short"] == "succeeded"  # its exit code was kept while ANT was down
        assert states["long"] == "running"  # re-adopted, the same process
        assert states["next"] == "held"  # never ran: offered, not started behind our back
        r = c.post("/api/v1/recovery/restore", json={"task_ids": ["next"]})
        assert r.status_code == 200
        wait_state(c, "next", "running")
        check_reality(c, state)
        gpus = {t: c.get(f"/api/v1/tasks/{t}").json()["gpu_ids"] for t in ("long", "next")}
        assert not set(gpus["long"]) & set(gpus["next"])


@pytest.fixture
def tiny_state_dir(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs as the state directory (needs root, as CI and this machine have)."""
    target = tmp_path / "state"
    target.mkdir(mode=0o700)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(target)],
        capture_output=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    yield target
    kill_processes_of(target)
    subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_full_disk_under_the_database_answers_503_and_loses_nothing(
    server_factory: type[AntServer], tiny_state_dir: Path
) -> None:
    """Found: on a full disk a task stayed queued forever and kill answered 500."""
    server = server_factory(fake_gpus=2, config={"STATE_dir": str(tiny_state_dir)})
    server.start()
    with server.client() as c:
        submit(c, "sleep 60", n_gpus=2, task_id="holder")
        submit(c, "echo waited", n_gpus=1, task_id="waiting")
        wait_state(c, "holder", "running")
        filler = fill(tiny_state_dir)
        r = c.post("/api/v1/tasks", json={"command": "true", "task_id": "refused"})
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "store_unavailable"
        r = c.post("/api/v1/tasks/waiting/kill")
        assert r.status_code == 503, r.text
        r = c.post("/api/v1/tasks/holder/kill")  # the process dies; its end waits for space
        assert r.status_code in (200, 503), r.text
        assert c.get("/api/v1/tasks/waiting").json()["state"] == "queued"
        assert c.get("/api/").status_code == 200
        filler.unlink()
        wait_state(c, "holder", "killed")
        wait_state(c, "waiting", "succeeded")
        r = c.post("/api/v1/tasks", json={"command": "true", "task_id": "accepted"})
        assert r.status_code == 201
        wait_state(c, "accepted", "succeeded")
        check_reality(c, tiny_state_dir)
    assert "Traceback" not in server.output()
    server.stop()
    assert db_states(tiny_state_dir) == {
        "holder": "killed",
        "waiting": "succeeded",
        "accepted": "succeeded",
    }


def test_a_hundred_concurrent_restarts_make_one_copy(server: AntServer) -> None:
    """Found: 100 concurrent POST /restart of one running task created 100 copies."""
    with server.client() as c:
        submit(c, "sleep 60", n_gpus=1, task_id="job")
        wait_state(c, "job", "running")
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(20)

    def restarter() -> None:
        with server.client() as mine:
            barrier.wait()
            for _ in range(5):
                answers.append(mine.post("/api/v1/tasks/job/restart"))

    threads = [threading.Thread(target=restarter) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = [r for r in answers if r.status_code == 201]
    refused = [r for r in answers if r.status_code == 409]
    assert len(created) == 1 and len(refused) == 99, [r.status_code for r in answers][:10]
    assert all("job-restart-1" in r.json()["error"]["message"] for r in refused)
    with server.client() as c:
        ids = {t["task_id"] for t in c.get("/api/v1/tasks").json()["tasks"]}
        assert ids == {"job", "job-restart-1"}
        wait_state(c, "job-restart-1", "running")
        check_reality(c, server.state_dir)


def test_a_large_multi_submit_does_not_stop_the_server(server: AntServer) -> None:
    """Found: a 100,000-line submit blocked health for 5 s; 20,000 lines took the RSS to 4 GB."""
    n = 20_000
    text = "\n".join(f"ant_task_id=bulk-{i} ant_n_gpus=1 sleep 30" for i in range(n))
    result: dict[str, httpx.Response] = {}

    def big() -> None:
        with server.client() as c:
            result["r"] = c.post("/api/v1/tasks", json={"command": text, "mode": "multi"})

    thread = threading.Thread(target=big)
    answered_meanwhile = 0
    with server.client() as c:
        thread.start()
        while thread.is_alive():
            if c.get("/api/", timeout=30).status_code == 200 and thread.is_alive():
                answered_meanwhile += 1
        thread.join()
        r = result["r"]
        assert r.status_code == 201, r.text[:300]
        tasks = r.json()["tasks"]
        assert [t["task_id"] for t in tasks] == [f"bulk-{i}" for i in range(n)]
        assert answered_meanwhile > 0
        page = c.get("/api/v1/tasks", params={"state": "queued", "limit": 5}).json()
        assert page["total"] == n - 4
        assert page["tasks"][0]["queue_position"] == 1
        assert page["tasks"][0]["pending_reason"].startswith("needs 1 GPU; none free")
        check_reality(c, server.state_dir)
