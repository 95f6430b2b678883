"""Moving over from ANT 1.1 on a real server: POST /api/v1/import/ant1 with realistic recovery
files of both versions (tests/fixtures/ant1), logs brought in, clashes, idempotence, a corrupt
file; `ant import-ant1` through the CLI; the one-time offer on a new database's first start."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from tests.api.test_tasks_api import assert_error, submit, wait_state
from tests.cli.test_cli import Ant
from tests.server import AntServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ant1"


def ant1_logs(root: Path, names: list[str]) -> None:
    """The log files the fixtures name (relative to where ANT 1.1 ran: `root`)."""
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"output of {path.stem}\nline 2\nlast line of {path.stem}\n")


def post_import(c: httpx.Client, fixture: str, root: Path) -> dict[str, Any]:
    text = (FIXTURES / fixture).read_text()
    r = c.post("/api/v1/import/ant1", json={"content": text, "base_dirs": [str(root)]})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def task(c: httpx.Client, task_id: str) -> dict[str, Any]:
    r = c.get(f"/api/v1/tasks/{task_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_version_2_history_recovery_logs_clash_and_idempotence(
    server: AntServer, tmp_path: Path
) -> None:
    old = tmp_path / "ant1"
    ant1_logs(
        old,
        [
            "ant_runner_logs/20250302-080000/sweep-lr-0.01.log",
            "ant_runner_logs/20250302-080000/sweep-lr-0.1.log",
            "ant_runner_logs/20250302-090000/train-big.log",
            "ant_runner_logs/20250301-050000/baseline.log",
            "ant_runner_logs/20250228-070000/restored-done.log",
            # prep-data's log was deleted since: it is imported without one
        ],
    )
    with server.client() as c:
        # `baseline` is another task in ANT already: a clash, never overwritten.
        submit(c, "echo mine", task_id="baseline")
        wait_state(c, "baseline", "succeeded")
        out = post_import(c, "recovery_v2.json", old)
        assert out["imported"] == 9 and out["held"] == 3
        assert out["clashes"] == ["baseline"] and out["already_there"] == 0
        assert out["without_task_id"] == 1 and out["older_copies"] == 1
        assert len(out["invalid"]) == 1 and out["invalid"][0].startswith("bad id with spaces:")
        assert (out["logs_copied"], out["logs_missing"]) == (4, 1)
        assert task(c, "baseline")["command"] == "echo mine"

        done = task(c, "sweep-lr-0.01")
        assert done["state"] == "succeeded" and done["exit_code"] is None
        assert done["started_at"] == 1740890000.0 and done["finished_at"] == 1740893600.5
        assert done["n_gpus"] == 2 and done["gpu_ids"] == [0, 1]
        assert done["env"] == {"OMP_NUM_THREADS": "8"} and done["tags"] == ["ant1"]
        assert done["command"] == "python train.py --lr 0.01 --port 29511"
        log = c.get("/api/v1/tasks/sweep-lr-0.01/log").json()["text"]
        assert "last line of sweep-lr-0.01" in log
        full = c.get("/api/v1/tasks/sweep-lr-0.01/log", params={"full": "true"}).text
        assert full.startswith("output of sweep-lr-0.01")
        # The log is ANT's own now: it stays readable when ANT 1.1's directory is gone.
        (old / "ant_runner_logs/20250302-080000/sweep-lr-0.01.log").unlink()
        assert "line 2" in c.get("/api/v1/tasks/sweep-lr-0.01/log").json()["text"]

        assert task(c, "sweep-lr-0.1")["state"] == "killed"  # terminated: true
        assert task(c, "prep-data")["state"] == "succeeded"
        assert task(c, "minimal")["state"] == "succeeded"
        hidden_done = task(c, "restored-done")
        assert hidden_done["state"] == "succeeded" and hidden_done["gpu_ids"] == [2]
        assert (
            "last line of restored-done" in c.get("/api/v1/tasks/restored-done/log").json()["text"]
        )
        assert task(c, "forgotten-queued")["state"] == "killed"

        # Interrupted and queued ones: held in recovery, as ANT's own after a restart.
        recovery = c.get("/api/v1/recovery").json()
        held = {t["task_id"]: t for t in recovery["last_session"] + recovery["earlier_sessions"]}
        assert set(held) == {"train-big", "eval-b", "old-interrupted"}
        assert all(t["state"] == "held" for t in held.values())
        big = held["train-big"]
        assert big["workdir"] == "/home/alice/proj" and big["n_gpus"] == 2
        assert big["env"]["ant_conda_env"] == "torch" and "interrupted" in big["reason"]
        # Its interrupted run's log stays readable as attempt 1.
        first = c.get("/api/v1/tasks/train-big/log", params={"attempt": 1}).json()
        assert "last line of train-big" in first["text"]

        # Held tasks restore and run like any other (the fake GPUs are enough for eval-b).
        r = c.post("/api/v1/recovery/restore", json={"task_ids": ["eval-b"]})
        assert r.status_code == 200, r.text
        assert r.json()["tasks"][0]["state"] in ("queued", "running")

        # Twice: nothing changes.
        total = c.get("/api/v1/tasks").json()["total"]
        again = post_import(c, "recovery_v2.json", old)
        assert again["imported"] == 0 and again["task_ids"] == []
        assert again["already_there"] == 9 and again["clashes"] == ["baseline"]
        assert c.get("/api/v1/tasks").json()["total"] == total
        assert task(c, "baseline")["command"] == "echo mine"


def test_version_1_and_a_corrupt_file(server: AntServer, tmp_path: Path) -> None:
    ant1_logs(
        tmp_path,
        [
            "ant_runner_logs/20250101-030000/v1-done.log",
            "ant_runner_logs/20250101-030000/v1-killed.log",
        ],
    )
    with server.client() as c:
        before = c.get("/api/v1/tasks").json()["total"]
        for content in ("{not json", '{"version": 2}', "[]"):
            r = c.post("/api/v1/import/ant1", json={"content": content})
            message = assert_error(r, 400, "invalid_request")
            assert "not an ANT 1.1 recovery file" in message
        assert_error(c.post("/api/v1/import/ant1", json={"content": 3}), 400)
        assert c.get("/api/v1/tasks").json()["total"] == before

        out = post_import(c, "recovery_v1.json", tmp_path)
        assert (out["imported"], out["held"], out["logs_copied"]) == (4, 2, 2)
        assert task(c, "v1-done")["state"] == "succeeded"
        assert task(c, "v1-killed")["state"] == "killed"
        assert task(c, "v1-running")["state"] == "held"
        assert task(c, "v1-queued")["state"] == "held"
        assert task(c, "v1-queued")["env"] == {"HF_HOME": "/scratch/hf"}
        # Found by its tag, as every imported task.
        tagged = c.get("/api/v1/tasks", params={"tag": "ant1"}).json()["total"]
        assert tagged == 4

    # Without the token: refused, nothing imported.
    r = httpx.post(server.url + "/api/v1/import/ant1", json={"content": "{}"})
    assert r.status_code == 401


def test_cli_import_ant1(server: AntServer, tmp_path: Path) -> None:
    ant = Ant(server)
    old = tmp_path / "old-ant"
    ant1_logs(old, ["ant_runner_logs/20250101-030000/v1-done.log"])
    recovery = old / "ant_runner_logs" / "ant_recovery_state.json"
    recovery.write_text((FIXTURES / "recovery_v1.json").read_text())
    # Run from anywhere: the log names are found next to the file (its directory's parent).
    r = ant("import-ant1", str(recovery))
    assert "imported 4 task(s) (2 held in recovery" in r.stdout
    assert "logs: 1 brought in, 2 no longer there" in r.stdout
    assert "last line of v1-done" in ant("logs", "v1-done").stdout
    again = ant.json("import-ant1", str(recovery))
    assert again["imported"] == 0 and again["already_there"] == 4
    # Errors: one line, distinct exit codes, nothing changed.
    bad = tmp_path / "bad.json"
    bad.write_text('{"sessions": [')
    r = ant("import-ant1", str(bad), ok=False)
    assert r.returncode == 7 and r.stderr.count("\n") == 1
    assert "not an ANT 1.1 recovery file: invalid JSON" in r.stderr
    r = ant("import-ant1", str(tmp_path / "missing.json"), ok=False)
    assert r.returncode == 8 and "cannot read" in r.stderr
    bad.write_bytes(b"\xff\xfe{}")
    r = ant("import-ant1", str(bad), ok=False)
    assert r.returncode == 7 and "not UTF-8" in r.stderr


def test_offered_once_on_a_new_databases_first_start(
    server_factory: type[AntServer], tmp_path: Path
) -> None:
    state = tmp_path / "ant_runner_logs" / "ant_recovery_state.json"
    state.parent.mkdir(parents=True)
    state.write_text((FIXTURES / "recovery_v1.json").read_text())
    server = server_factory(
        config={"RECOVERY_state_file": "./ant_runner_logs/ant_recovery_state.json"}
    ).start()
    hint = f"bring its tasks in with: ant import-ant1 {state}"
    deadline = time.monotonic() + 10
    while hint not in server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hint in server.output()
    with server.client() as c:  # offered, not done: nothing imported
        assert c.get("/api/v1/tasks").json()["total"] == 0
    server.stop()
    server.output_path.write_text("")
    server.start()
    with server.client() as c:
        assert c.get("/api/").status_code == 200
    assert "ant import-ant1" not in server.output()  # once per database


def test_not_offered_when_the_database_is_not_new(server_factory: type[AntServer]) -> None:
    server = server_factory().start()  # no recovery file at the default place
    assert "ant import-ant1" not in server.output()
    state = server.workdir / "ant_runner_logs" / "ant_recovery_state.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"version": 1, "queued": []}))
    server.stop()
    server.start()
    assert "ant import-ant1" not in server.output()
    assert os.path.exists(state)
