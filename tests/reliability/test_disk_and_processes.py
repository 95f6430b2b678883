"""Disk trouble (full or read-only log directory) and process hygiene on shutdown."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.api.test_tasks_api import submit, wait_state
from tests.reliability.reality import check_reality
from tests.server import AntServer, wait_for


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def tiny_log_dir(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs as the log directory (needs root, as CI and this machine have)."""
    target = tmp_path / "tiny-logs"
    target.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(target)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


def test_full_log_disk_fails_the_task_and_keeps_the_server(
    server_factory: type[AntServer], tiny_log_dir: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    server = server_factory(config={"LOGGER_log_dir": str(tiny_log_dir), "STATE_dir": str(state)})
    server.start()
    with server.client() as c:
        ok = submit(c, "echo fine", task_id="before")[0]
        wait_state(c, ok["task_id"], "succeeded")
        (tiny_log_dir / "filler").write_bytes(b"x" * (1024 * 1024 - 16 * 1024))  # almost full
        with pytest.raises(OSError):
            (tiny_log_dir / "more").write_bytes(b"x" * (64 * 1024))
        submit(c, "echo never", task_id="no-space")
        failed = wait_state(c, "no-space", "failed")
        assert "no space left for the log" in failed["reason"]
        assert c.get("/api/").status_code == 200
        (tiny_log_dir / "filler").unlink()
        submit(c, "echo again", task_id="after")
        wait_state(c, "after", "succeeded")
        check_reality(c, server.state_dir)
    server.stop()
    server.start()  # the store is consistent: every task is there with its final state
    with server.client() as c:
        states = {t["task_id"]: t["state"] for t in c.get("/api/v1/tasks").json()["tasks"]}
        assert states == {"before": "succeeded", "no-space": "failed", "after": "succeeded"}


def test_read_only_log_disk(
    server_factory: type[AntServer], tiny_log_dir: Path, tmp_path: Path
) -> None:
    server = server_factory(
        config={"LOGGER_log_dir": str(tiny_log_dir), "STATE_dir": str(tmp_path / "s")}
    )
    server.start()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_log_dir)], check=True)
    with server.client() as c:
        submit(c, "echo never", task_id="ro")
        failed = wait_state(c, "ro", "failed")
        assert "Read-only file system" in failed["reason"]
        assert c.get("/api/").status_code == 200
        check_reality(c, server.state_dir)
    subprocess.run(["mount", "-o", "remount,rw", str(tiny_log_dir)], check=True)


def test_keep_leaves_every_process_and_readopts_them(server_factory: type[AntServer]) -> None:
    server = server_factory()
    server.start()
    pids_file = server.workdir / "pids"
    with server.client() as c:
        submit(
            c,
            f"bash -c 'for i in 1 2; do sleep 300 & echo $! >> {pids_file}; done; wait'",
            n_gpus=1,
            task_id="tree",
        )
        wait_for(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2)
        wrapper = wait_state(c, "tree", "running")["pid"]
    tree = [wrapper] + [int(p) for p in pids_file.read_text().split()]
    assert server.sigterm() == 0
    assert all(alive(p) for p in tree)  # keep: nothing was killed
    server.start()
    with server.client() as c:
        assert c.get("/api/v1/tasks/tree").json()["state"] == "running"  # re-adopted
        check_reality(c, server.state_dir)
        c.post("/api/v1/tasks/tree/kill")
        wait_state(c, "tree", "killed")
        check_reality(c, server.state_dir)
    wait_for(lambda: not any(alive(p) for p in tree))  # and still fully controllable
