"""Monitoring with the fake backend: outside load, ADGS windows, attribution, failures, /metrics."""

from __future__ import annotations

import getpass
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_tasks_api import submit, wait_state
from tests.server import AntServer, wait_for

WINDOW = 1.5
ADGS = {
    "ADGS_enabled": True,
    "ADGS_window_seconds": WINDOW,
    "ADGS_grace_seconds": 1,
    "MONITORING_refresh_interval": 0.2,
}


@pytest.fixture
def outsider() -> Iterator[subprocess.Popen[bytes]]:
    """A real process outside ANT, to stand for someone's hand-started job."""
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


def load(server: AntServer, data: dict[str, Any]) -> None:
    path = server.log_dir / "fake_gpus.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def gpu(c: httpx.Client, index: int) -> dict[str, Any]:
    gpus: list[dict[str, Any]] = c.get("/api/v1/gpus").json()
    return next(g for g in gpus if g["index"] == index)


def test_external_load_marks_busy_after_the_window_and_frees_after_quiet(
    server_factory: type[AntServer], outsider: subprocess.Popen[bytes]
) -> None:
    server = server_factory(fake_gpus=2, config=ADGS).start()
    with server.client() as c:
        load(
            server, {"0": {"util": 0.95, "processes": [{"pid": outsider.pid, "used_memory": 4e9}]}}
        )
        t0 = time.monotonic()
        wait_for(lambda: gpu(c, 0)["processes"])  # the load is being sampled
        assert gpu(c, 0)["state"] == "free"  # seen, but not for a whole window yet
        wait_for(lambda: gpu(c, 0)["state"] == "busy_external")
        assert time.monotonic() - t0 >= WINDOW  # a guaranteed lower bound, not a speed claim
        g = gpu(c, 0)
        assert f"pid {outsider.pid}" in g["external"] and "sleep 300" in g["external"]
        assert getpass.getuser() in g["external"]

        [task] = submit(c, "echo ran-on-$CUDA_VISIBLE_DEVICES", n_gpus=2, task_id="needs-both")
        reason = wait_for(lambda: c.get("/api/v1/tasks/needs-both").json()["pending_reason"])
        assert f"GPU 0 busy outside ANT (pid {outsider.pid}" in reason
        load(server, {})
        t1 = time.monotonic()
        done = wait_state(c, "needs-both", "succeeded")
        assert done["gpu_ids"] == [0, 1]
        assert time.monotonic() - t1 >= WINDOW - 0.3  # freed only after a quiet window
        assert task["task_id"] == "needs-both"


def test_attribution_of_ant_and_outside_processes(
    server_factory: type[AntServer], outsider: subprocess.Popen[bytes]
) -> None:
    server = server_factory(fake_gpus=2, config={"MONITORING_refresh_interval": 0.2}).start()
    pid_file = server.workdir / "child.pid"
    with server.client() as c:
        submit(c, f"bash -c 'sleep 300 & echo $! > {pid_file}; wait'", n_gpus=1, task_id="trainer")
        running = wait_state(c, "trainer", "running")
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip())
        grandchild = int(pid_file.read_text())
        index = running["gpu_ids"][0]
        other = 1 - index
        load(
            server,
            {
                str(index): {"processes": [{"pid": grandchild, "used_memory": 3e9}]},
                str(other): {"processes": [{"pid": outsider.pid, "used_memory": 1e9}]},
            },
        )

        def attributed() -> dict[str, Any] | None:
            g = gpu(c, index)
            return g if any(p["pid"] == grandchild for p in g["processes"]) else None

        mine = wait_for(attributed)
        by_pid = {p["pid"]: p for p in mine["processes"]}
        assert by_pid[grandchild]["task_id"] == "trainer"
        assert by_pid[running["pid"]]["task_id"] == "trainer"  # the task's own process
        theirs = wait_for(lambda: gpu(c, other)["processes"])
        assert theirs[0]["task_id"] is None and theirs[0]["user"] == getpass.getuser()
        assert "sleep 300" in theirs[0]["command"]
        mem = wait_for(lambda: c.get("/api/v1/tasks/trainer").json()["gpu_mem_used"])
        assert mem == 2 * 2**30 + 3_000_000_000  # simulated task memory + its grandchild's
        c.post("/api/v1/tasks/trainer/kill")


def test_gpu_failure_keeps_the_server_up(server_factory: type[AntServer]) -> None:
    server = server_factory(fake_gpus=1, config={"MONITORING_refresh_interval": 0.2}).start()
    with server.client() as c:
        load(server, {"0": {"error": "GPU has fallen off the bus"}})
        wait_for(lambda: gpu(c, 0)["state"] == "unavailable")
        assert gpu(c, 0)["error"] == "GPU has fallen off the bus"
        submit(c, "true", n_gpus=1, task_id="waits")
        reason = wait_for(lambda: c.get("/api/v1/tasks/waits").json()["pending_reason"])
        assert "GPU 0 unavailable (GPU has fallen off the bus)" in reason
        (server.log_dir / "fake_gpus.json").write_text("{ not json")  # garbage: ignored
        wait_state(c, "waits", "succeeded")
        assert c.get("/api/").status_code == 200


def test_system_history_and_samples(server_factory: type[AntServer]) -> None:
    server = server_factory(
        config={"MONITORING_refresh_interval": 0.2, "MONITORING_history_size": 5}
    ).start()
    with server.client() as c:
        data = wait_for(lambda: (d := c.get("/api/v1/system").json())["history"][4:] and d)
        assert len(data["history"]) == 5 and data["history_size"] == 5
        host = data["current"]["host"]
        assert host["mem_total"] > 0 and len(host["per_core"]) >= 1 and len(host["load_avg"]) == 3
        assert [g["index"] for g in data["current"]["gpus"]] == [0, 1, 2, 3]
        assert data["smoother_alpha"] == 0.1


def test_metrics(server_factory: type[AntServer], tmp_path: Path) -> None:
    server = server_factory().start()
    assert httpx.get(server.url + "/metrics").status_code == 401
    with server.client() as c:
        submit(c, "true", n_gpus=1, task_id="m1")
        submit(c, "exit 2", task_id="m2")
        wait_state(c, "m1", "succeeded")
        wait_state(c, "m2", "failed")
        text = c.get("/metrics").text
    assert 'ant_tasks{state="succeeded"} 1.0' in text and 'ant_tasks{state="failed"} 1.0' in text
    assert "ant_queue_length 0.0" in text
    assert (
        'ant_gpu_utilization_ratio{gpu="0"}' in text
        and 'ant_gpu_busy_external{gpu="3"} 0.0' in text
    )
    assert "ant_dispatch_latency_seconds_count 2.0" in text
    assert 'ant_task_duration_seconds_count{state="succeeded"} 1.0' in text
    (tmp_path / "public").mkdir()  # one server per state directory
    public = server_factory(workdir=tmp_path / "public", config={"METRICS_require_auth": False})
    public.start()
    assert httpx.get(public.url + "/metrics").status_code == 200
    assert httpx.get(public.url + "/api/v1/tasks").status_code == 401
