"""`ant backup FILE`: a consistent copy of the database of a server that keeps writing."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import threading
from pathlib import Path

import httpx

from tests.cli.test_cli import Ant
from tests.server import AntServer, wait_for


def stored_ids(path: Path) -> set[str]:
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {row[0] for row in db.execute("SELECT task_id FROM tasks")}
    finally:
        db.close()


def test_backup_while_the_server_writes(server: AntServer, tmp_path: Path) -> None:
    ant = Ant(server)
    accepted: list[str] = []
    refused: list[str] = []
    stop = threading.Event()

    def submit_until_stopped() -> None:
        with server.client() as c:
            for n in range(2000):  # bounded; stopped long before
                if stop.is_set():
                    return
                r = c.post("/api/v1/tasks", json={"command": "true", "task_id": f"w{n}"})
                if r.status_code != 201:
                    refused.append(f"{r.status_code} {r.text}")
                    return
                accepted.append(f"w{n}")

    writer = threading.Thread(target=submit_until_stopped)
    writer.start()
    try:
        copies = []
        for i in range(3):
            while len(accepted) < 20 * (i + 1):
                assert writer.is_alive(), refused
                stop.wait(0.05)
            before = list(accepted)
            target = tmp_path / f"copy{i}.db"
            said = ant("backup", str(target)).stdout
            after = set(accepted)
            ids = stored_ids(target)
            assert set(before) <= ids  # everything accepted before it began
            assert len(ids - after) <= 1  # nothing invented (one answer may still be on its way)
            assert all(re.fullmatch(r"w\d+", i) for i in ids)
            assert f"backed up {len(ids)} tasks" in said and str(target) in said
            assert stat.S_IMODE(target.stat().st_mode) == 0o600  # it holds what the tasks ran
            copies.append(ids)
    finally:
        stop.set()
        writer.join(60)
    assert not refused and copies[0] < copies[1] < copies[2]
    # A copy is one file (no -wal beside it), and nothing is left behind on either side.
    assert not list(tmp_path.glob("*-wal")) and not list(tmp_path.glob(".*.part"))
    wait_for(lambda: not list(server.state_dir.glob(".backup-*")))  # dropped once it was sent
    shown = ant.json("backup", str(tmp_path / "copy0.db"))  # replaces it
    assert shown["file"] == str(tmp_path / "copy0.db") and shown["tasks"] >= len(copies[2])
    assert shown["bytes"] == (tmp_path / "copy0.db").stat().st_size
    assert shown["schema_version"] >= 15


def test_backup_errors_are_one_line_and_leave_nothing(server: AntServer, tmp_path: Path) -> None:
    ant = Ant(server)
    assert httpx.get(server.url + "/api/v1/backup").status_code == 401  # the token is needed
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    r = ant("backup", str(tmp_path), ok=False)  # a directory
    assert r.returncode == 2 and "is a directory" in r.stderr
    r = ant("backup", str(tmp_path / "missing" / "x.db"), ok=False)
    assert r.returncode == 8 and r.stderr.startswith("ant: error: cannot write")
    ant.env["ANT_URL"] = "http://127.0.0.1:9"  # nobody there
    r = ant("backup", str(tmp_path / "x.db"), ok=False)
    assert r.returncode == 3 and len(r.stderr.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == []
