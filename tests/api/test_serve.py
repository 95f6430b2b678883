"""Starting the server: run.py, GPU selection, certificates, login URL, stdout mirroring, live
terminal."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ant_scheduler.tls import ensure_self_signed
from tests.api.test_events import read_events
from tests.api.test_tasks_api import submit, wait_state
from tests.server import AntServer, wait_for

REPO = Path(__file__).resolve().parents[2]


def test_run_py_is_ant_serve_with_a_gpu_list(server_factory: type[AntServer]) -> None:
    server = server_factory(fake_gpus=8)
    server.args = [sys.executable, str(REPO / "run.py"), "0,2,5", *server.args[4:]]
    server.start()
    with server.client() as c:
        assert [g["index"] for g in c.get("/api/v1/gpus").json()] == [0, 2, 5]
        [task] = submit(c, "echo $CUDA_VISIBLE_DEVICES", n_gpus=2)
        done = wait_state(c, task["task_id"], "succeeded")
        assert done["gpu_ids"] == [0, 2]


def nvml_present() -> bool:
    from ant_scheduler.monitor.nvml import NvmlGpuBackend, NvmlUnavailable

    try:
        NvmlGpuBackend().close()
    except NvmlUnavailable:
        return False
    return True


@pytest.mark.skipif(nvml_present(), reason="this machine has NVIDIA GPUs")
def test_gpu_list_without_nvidia_is_a_clear_error(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, str(REPO / "run.py"), "0,1,2,3", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert r.returncode == 2
    assert "--fake-gpus" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "ant_scheduler", "serve", "--gpus", "0,x"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert r.returncode == 2 and "comma-separated" in r.stderr


def test_own_certificate(server_factory: type[AntServer], tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path / "mine")
    server = server_factory(tls=True, extra_args=["--certfile", str(cert), "--keyfile", str(key)])
    server.start()
    import ssl

    ctx = ssl.create_default_context(cafile=str(cert))
    assert httpx.get(server.url + "/api/", verify=ctx).status_code == 200
    assert not (server.log_dir / "tls").exists()


def test_task_output_is_mirrored_to_ant_stdout(server_factory: type[AntServer]) -> None:
    server = server_factory(config={"LOGGER_log_to_stdout": True}).start()
    with server.client() as c:
        [task] = submit(c, "echo mirrored-line-1; echo mirrored-line-2", task_id="mirror")
        wait_state(c, "mirror", "succeeded")
    wait_for(lambda: "[mirror] mirrored-line-2" in server.output())
    assert "[mirror] mirrored-line-1" in server.output()
    assert task["task_id"] == "mirror"


def test_mirror_does_not_print_an_adopted_tasks_log_again(
    server_factory: type[AntServer], tmp_path: Path
) -> None:
    """After a restart, the mirror goes on from where the adopted task's log is (P11), and a
    task restored under the same id mirrors only its new run."""
    server = server_factory(config={"LOGGER_log_to_stdout": True}).start()
    go = tmp_path / "go"
    with server.client() as c:
        submit(c, f"echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo second", task_id="t")
        wait_for(lambda: "[t] first" in server.output())
    assert server.sigterm() == 0  # the task keeps running
    server.start()
    go.touch()
    with server.client() as c:
        wait_state(c, "t", "succeeded")
    wait_for(lambda: "[t] second" in server.output())
    assert server.output().count("[t] first") == 1


def test_terminal_snapshots_arrive_on_the_event_stream(server: AntServer) -> None:
    with server.client() as c:
        submit(
            c,
            "printf 'x\\n'; for i in 1 2 3 4 5; do printf '\\r%d0%%|#|' $i; done; sleep 30",
            task_id="bar",
        )
        wait_state(c, "bar", "running")
        events = read_events(c, lambda ev: any(t == "terminal" and "bar" in d for _, t, d in ev))
        snapshot = next(d for _, t, d in events if t == "terminal")["bar"]
        assert snapshot["lines"] == ["x", "50%|#|"]
        assert snapshot["progress"] == 0.5
        c.post("/api/v1/tasks/bar/kill")
        wait_state(c, "bar", "killed")


def test_garbage_bodies_get_clean_4xx(server: AntServer) -> None:
    with server.client() as c:
        for body, ctype in [
            (b"\xff\xfe\x00", "application/json"),
            (b'{"command": "\xff"}', "application/json"),
            (b"command=true", "application/x-www-form-urlencoded"),
            (b"", "application/json"),
        ]:
            r = c.post("/api/v1/tasks", content=body, headers={"content-type": ctype})
            assert 400 <= r.status_code < 500, (body, r.status_code)
            assert set(r.json()) == {"error"}
        r = c.post(
            "/api/v1/tasks", json={"command": "x", "env": {f"V{i}": "1" for i in range(5000)}}
        )
        assert r.status_code == 400
        for weird in ["%2e%2e", "a%00b", "..%2f..%2fetc", "x" * 500]:
            r = c.get(f"/api/v1/tasks/{weird}/log")
            assert r.status_code == 404, (weird, r.status_code)
        assert c.get("/api/v1/tasks").json()["total"] == 0


def test_login_url_is_printed_only_to_a_terminal(server_factory: type[AntServer]) -> None:
    # Not a terminal (a log file here): no token anywhere, and a pointer to `ant login-url`.
    server = server_factory(token=None).start()
    token = (server.log_dir / "token").read_text().strip()
    wait_for(lambda: "ant login-url" in server.output())
    assert token not in server.output() and "?token=" not in server.output()
    server.stop()

    # A terminal: the login URL, which really logs a browser in.
    master, slave = pty.openpty()
    env = {**os.environ, "XDG_CONFIG_HOME": str(server.workdir / ".config")}
    env.pop("ANT_TOKEN", None)
    proc = subprocess.Popen(
        server.args, cwd=server.workdir, env=env, stdout=slave, stderr=subprocess.DEVNULL
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"\n" not in seen.partition(b"Open in a browser: ")[2]:
            assert time.monotonic() < deadline, seen
            if select.select([master], [], [], 0.5)[0]:
                seen += os.read(master, 4096)
        line = seen.partition(b"Open in a browser: ")[2].split(b"\r\n")[0].decode()
        assert line == f"{server.url}/?token={token}"
        r = httpx.get(line, follow_redirects=False)
        assert r.status_code == 303 and "ant_session=" in r.headers["set-cookie"]
    finally:
        proc.terminate()
        proc.wait(20)
        os.close(master)


def test_ctrl_c_with_a_browser_watching_stops_cleanly(server_factory: type[AntServer]) -> None:
    """An open event stream (a browser) used to hold the shutdown for its grace, then be
    cancelled with a 60-line ASGI traceback on the console (P11). Now streams end at once."""
    server = server_factory()
    server.start()
    assert server.proc is not None
    lines: list[str] = []
    with server.client() as c, c.stream("GET", "/api/v1/events") as stream:
        chunks = stream.iter_lines()
        lines.append(next(chunks))  # the stream is open
        server.proc.send_signal(signal.SIGINT)
        lines.extend(chunks)  # ends, instead of hanging until the server cancels it
    assert server.proc.wait(timeout=20) == 0  # a clean stop
    out = server.output()
    assert "Traceback" not in out and "Exception in ASGI" not in out, out
    assert "stopped: no task was running" in out
