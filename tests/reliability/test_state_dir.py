"""The state directory: one server per directory (ant.lock), private files, refused unsafe setups.

Every test runs the real `ant serve` in a subprocess; "another user" is uid 65534 (nobody), which
these tests (run as root) can chown files to.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.api.test_tasks_api import submit, wait_state
from tests.server import TOKEN, AntServer, wait_for

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


def serve_env(server: AntServer) -> dict[str, str]:
    """The environment AntServer.start gives `ant serve`."""
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = str(server.workdir / ".config")
    env.pop("ANT_TOKEN", None)
    if server.token is not None:
        env["ANT_TOKEN"] = server.token
    return env


def run_serve(server: AntServer, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `ant serve` to completion (for servers that must refuse to start)."""
    return subprocess.run(
        server.args,
        cwd=server.workdir,
        env=serve_env(server),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def refused(r: subprocess.CompletedProcess[str]) -> str:
    """Assert `ant serve` refused to start with exit 2 and one `ant: error:` line; return it."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ant: error: "), r.stderr
    return lines[0]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_second_server_on_the_same_state_dir_is_refused(
    server_factory: type[AntServer],
) -> None:
    first = server_factory().start()
    assert first.proc is not None
    lock = first.log_dir / "ant.lock"
    wait_for(lambda: first.url in lock.read_text())  # recorded once it listens
    with first.client() as c:
        [task] = submit(c, "sleep 60", task_id="long")
        wait_state(c, "long", "running")
    copies = [first.log_dir / "connection.json", first.workdir / ".config/ant/connection.json"]
    wait_for(lambda: all(p.exists() for p in copies))
    before = [(p.read_bytes(), p.stat().st_mtime_ns) for p in copies]

    second = server_factory()
    line = refused(run_serve(second))
    assert f"another ANT server (pid {first.proc.pid}, {first.url})" in line
    assert f"state directory {first.log_dir}" in line and "stop it first" in line

    # The running server is untouched: same connection files, its task is still its own.
    assert [(p.read_bytes(), p.stat().st_mtime_ns) for p in copies] == before
    assert json.loads(lock.read_text())["pid"] == first.proc.pid
    with first.client() as c:
        assert c.get("/api/v1/tasks/long").json()["state"] == "running"

    # SIGKILL drops the lock with the process (the task, still running, never held it).
    first.kill9()
    second.start()
    assert second.proc is not None
    wait_for(lambda: second.url in lock.read_text())
    assert json.loads(lock.read_text())["pid"] == second.proc.pid
    with second.client() as c:
        assert c.get("/api/v1/tasks/long").json()["state"] == "running"  # re-adopted
        c.post("/api/v1/tasks/long/kill")
        wait_state(c, "long", "killed")
    assert task["task_id"] == "long"


@needs_root
def test_a_state_dir_of_another_user_is_refused(server_factory: type[AntServer]) -> None:
    server = server_factory(token=None)
    server.log_dir.mkdir(mode=0o700)
    os.chown(server.log_dir, NOBODY, NOBODY)
    line = refused(run_serve(server))
    assert f"state directory {server.log_dir} belongs to uid {NOBODY}" in line
    assert "use your own STATE_dir" in line
    assert os.listdir(server.log_dir) == []  # not even the lock file


def test_state_dir_and_secrets_are_private(server_factory: type[AntServer]) -> None:
    server = server_factory(token=None, tls=True)
    server.log_dir.mkdir()
    os.chmod(server.log_dir, 0o777)  # ours but open to all: tightened, not refused
    server.start()
    user_copy = server.workdir / ".config" / "ant" / "connection.json"
    wait_for(user_copy.exists)  # written after the state directory's copy
    assert mode(server.log_dir) == 0o700
    assert mode(server.log_dir / "tls") == 0o700
    for name in ("token", "tls/key.pem", "connection.json", "ant.lock", "ant.sock"):
        assert mode(server.log_dir / name) == 0o600, name
    assert mode(user_copy) == 0o600 and mode(user_copy.parent) == 0o700
    assert not [p for p in server.log_dir.iterdir() if p.name.endswith(".tmp")]

    # A key of ours with loose permissions (say, restored from a backup) is tightened on start.
    server.stop()
    os.chmod(server.log_dir / "tls" / "key.pem", 0o644)
    os.chmod(server.log_dir / "connection.json", 0o644)
    server.start()
    wait_for(lambda: mode(server.log_dir / "connection.json") == 0o600)
    assert mode(server.log_dir / "tls" / "key.pem") == 0o600


def _token_file(server: AntServer) -> Path:
    server.log_dir.mkdir(mode=0o700)
    token = server.log_dir / "token"
    token.write_text("planted-token-0123456789\n")
    os.chmod(token, 0o600)
    return token


@pytest.mark.parametrize("case", ["group-writable", "world-readable", "other-user", "symlink"])
def test_an_unsafe_token_file_is_refused(server_factory: type[AntServer], case: str) -> None:
    server = server_factory(token=None)
    token = _token_file(server)
    if case == "group-writable":
        os.chmod(token, 0o620)
        expected = f"run `chmod 600 {token}`"
    elif case == "world-readable":
        os.chmod(token, 0o644)
        expected = "can be read or written by other users (mode 0644)"
    elif case == "other-user":
        if os.geteuid() != 0:
            pytest.skip("chown to another user needs root")
        os.chown(token, NOBODY, NOBODY)
        expected = f"belongs to uid {NOBODY}"
    else:
        real = server.workdir / "elsewhere-token"
        token.rename(real)
        token.symlink_to(real)
        expected = "is a symbolic link"
    line = refused(run_serve(server))
    assert f"token file {token}" in line and expected in line, line
    assert not (server.log_dir / "connection.json").exists()
    assert not (server.log_dir / "ant.db").exists()


def test_a_safe_token_file_is_used_and_an_empty_one_replaced(
    server_factory: type[AntServer],
) -> None:
    server = server_factory(token=None)
    token = _token_file(server)
    server.start()
    headers = {"Authorization": "Bearer planted-token-0123456789"}
    assert httpx.get(server.url + "/api/v1/tasks", headers=headers).status_code == 200
    server.stop()
    token.write_text("")
    server.start()
    new = token.read_text().strip()
    assert len(new) >= 32 and mode(token) == 0o600
    headers = {"Authorization": f"Bearer {new}"}
    assert httpx.get(server.url + "/api/v1/tasks", headers=headers).status_code == 200


def test_ant_token_from_the_environment_leaves_the_token_file_alone(
    server_factory: type[AntServer],
) -> None:
    server = server_factory(token=TOKEN)
    token = _token_file(server)
    os.chmod(token, 0o644)  # unused, so not checked
    server.start()
    with server.client() as c:
        assert c.get("/api/v1/tasks").status_code == 200
    assert token.read_text() == "planted-token-0123456789\n"
