"""The local socket: `ant serve` also serves the API on `<state dir>/ant.sock` (plain HTTP, mode
0600, named in the connection file), and `ant` prefers it to the URL. Real servers only."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from ant_scheduler.client import Client, ConnectionFailed
from tests.server import AntServer, free_port, wait_for

ANT = str(Path(sys.executable).parent / "ant")
NOBODY = 65534


def start(server_factory: type[AntServer], **config: Any) -> tuple[AntServer, Path]:
    """A TLS server whose state directory is `ant_runner_logs` in its workdir (where `ant`
    looks), and that directory, once its connection file is written."""
    config.setdefault("LOGGER_log_dir", "ant_runner_logs")
    server = server_factory(tls=True, config=config).start()
    state = server.workdir / config.get("STATE_dir", config["LOGGER_log_dir"])
    wait_for(lambda: (state / "connection.json").exists())
    return server, state


def connection(state: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((state / "connection.json").read_text())
    return info


def run_ant(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ANT_URL", "ANT_TOKEN")}
    env["XDG_CONFIG_HOME"] = str(cwd / "no-config")  # only the connection file of `cwd`
    return subprocess.run(
        [ANT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def elsewhere(tmp: Path, info: dict[str, Any], **changes: Any) -> Path:
    """A directory holding a copy of a connection file, with changes."""
    tmp.mkdir()
    path = tmp / "connection.json"
    path.write_text(json.dumps({**info, **changes}))
    os.chmod(path, 0o600)
    return tmp


def test_the_server_listens_on_a_private_socket(server_factory: type[AntServer]) -> None:
    server, state = start(server_factory)
    path = state / "ant.sock"
    assert connection(state)["unix_socket"] == str(path.resolve())
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode) and st.st_uid == os.geteuid()
    assert stat.S_IMODE(st.st_mode) == 0o600  # only its owner (and root) can connect
    # Plain HTTP, the same app: health is public, the rest still needs the token.
    transport = httpx.HTTPTransport(uds=str(path))
    with httpx.Client(transport=transport, base_url="http://ant") as client:
        assert client.get("/api/").json()["status"] == "ok"
        assert client.get("/api/v1/tasks").status_code == 401
        auth = {"Authorization": f"Bearer {server.token}"}
        assert client.get("/api/v1/tasks", headers=auth).status_code == 200
    assert server.sigterm() == 0
    assert not path.exists()  # removed on a clean stop


def test_ant_uses_the_socket_and_falls_back_to_the_url(
    server_factory: type[AntServer], tmp_path: Path
) -> None:
    server, state = start(server_factory)
    info = connection(state)
    # The socket is used: a copy of the connection file whose URL answers nothing still works.
    dead_url = f"https://127.0.0.1:{free_port()}"
    via_socket = elsewhere(tmp_path / "via-socket", info, url=dead_url)
    r = run_ant("submit", "--id", "local", "--", "true", cwd=via_socket)
    assert r.returncode == 0 and r.stdout == "local\n", r.stderr
    assert run_ant("wait", "local", cwd=server.workdir).returncode == 0  # and from its directory

    # A server that died leaves its socket file, with nobody listening: the URL is used, and the
    # error is the one there would be without a socket.
    server.kill9()
    assert (state / "ant.sock").exists()
    without = elsewhere(tmp_path / "without", info, unix_socket=None)
    dead = run_ant("ls", cwd=server.workdir)
    assert dead.returncode == 3, dead.stderr
    assert dead.stderr == run_ant("ls", cwd=without).stderr
    assert dead.stderr.startswith(f"ant: error: cannot reach ANT at {info['url']}: ")

    # The next server replaces the stale socket.
    server.start()
    wait_for(lambda: connection(state)["pid"] == server.proc.pid)  # type: ignore[union-attr]
    assert stat.S_ISSOCK(os.lstat(state / "ant.sock").st_mode)
    r = run_ant("show", "--json", "local", cwd=via_socket)
    assert r.returncode == 0 and json.loads(r.stdout)["state"] == "succeeded", r.stderr


def test_only_a_socket_of_this_user_is_used(
    server_factory: type[AntServer], tmp_path: Path
) -> None:
    server, state = start(server_factory)
    path = str(state / "ant.sock")
    dead_url = f"https://127.0.0.1:{free_port()}"
    with Client(dead_url, server.token, unix_socket=path) as client:
        assert client.health()["status"] == "ok"
    not_a_socket = tmp_path / "file.sock"
    not_a_socket.write_text("")
    with (
        Client(dead_url, server.token, unix_socket=str(not_a_socket)) as client,
        pytest.raises(ConnectionFailed),
    ):
        client.health()
    if os.geteuid() == 0:  # another user's socket is not given the token
        os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
        with (
            Client(dead_url, server.token, unix_socket=path) as client,
            pytest.raises(ConnectionFailed),
        ):
            client.health()


def test_no_socket_when_it_cannot_be_made(server_factory: type[AntServer], tmp_path: Path) -> None:
    # Something else has its name: left alone; the commands use the URL.
    (tmp_path / "ant_runner_logs").mkdir(mode=0o700)
    (tmp_path / "ant_runner_logs" / "ant.sock").write_text("mine")
    server, state = start(server_factory)
    assert connection(state)["unix_socket"] is None
    assert (state / "ant.sock").read_text() == "mine"
    assert "warning: not listening on" in server.output()
    assert run_ant("ls", cwd=server.workdir).returncode == 0
    server.stop()
    # A state directory too deep for a Unix socket's path (at most 107 bytes).
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    server, state = start(server_factory, STATE_dir=str(deep))
    assert connection(state)["unix_socket"] is None
    assert not (deep / "ant.sock").exists()
    assert run_ant("ls", cwd=deep).returncode == 0  # ./connection.json
