"""`ant service install`: the systemd unit it writes, checked by systemd's own verifier where
there is one, and run: its ExecStart serves, and a task outlives a stop of ANT alone."""

from __future__ import annotations

import configparser
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.test_cli import ANT
from tests.server import free_port, wait_for

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def ant(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [ANT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "NO_COLOR": "1"}


def parse(text: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    unit.read_string(text)
    return unit


def exec_start(unit: configparser.ConfigParser) -> list[str]:
    """ExecStart's words (systemd's quoting is the shell's for what the unit holds)."""
    return shlex.split(unit["Service"]["ExecStart"].replace("%%", "%").replace("$$", "$"))


def verify(path: Path) -> None:
    """systemd's own check of a unit file: it fails on, or warns about, any bad line (where
    systemd is missing, the configparser checks of each test are what is left)."""
    if SYSTEMD_ANALYZE is None:
        return
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_a_user_unit_is_written_where_systemd_looks_and_says_what_next(
    tmp_path: Path, env: dict[str, str]
) -> None:
    work = tmp_path / "my project"
    work.mkdir()
    done = ant("service", "install", "--user", "--port", "7123", cwd=work, env=env)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "config" / "systemd" / "user" / "ant.service"
    assert f"wrote {path}" in done.stdout
    assert "systemctl --user daemon-reload" in done.stdout
    assert "systemctl --user enable --now ant.service" in done.stdout
    assert "loginctl enable-linger" in done.stdout  # else it ends with the user's last login
    unit = parse(path.read_text())
    service = unit["Service"]
    assert service["KillMode"] == "process"  # tasks outlive a restart of the unit
    assert service["WorkingDirectory"] == str(work)
    assert "User" not in service  # a user unit runs as its user
    words = exec_start(unit)
    assert Path(words[0]).is_absolute() and os.access(words[0], os.X_OK)
    assert words[1:4] == ["-m", "ant_scheduler", "serve"]
    assert words[words.index("--state-dir") + 1] == str(work / "ant_runner_logs")
    assert words[words.index("--port") + 1] == "7123"
    assert unit["Install"]["WantedBy"] == "default.target"
    verify(path)
    # Again with other options: the unit is replaced.
    again = ant("service", "install", "--user", "--state-dir", "/srv/ant", cwd=work, env=env)
    assert again.returncode == 0 and "/srv/ant" in parse(path.read_text())["Service"]["ExecStart"]


def test_a_system_unit_printed_runs_as_the_user_and_writes_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    config = tmp_path / "ant.json"
    config.write_text(json.dumps({"STATE_dir": "state 100%"}))
    env = {**env, "SUDO_USER": "alice"}
    system_unit = Path("/etc/systemd/system/ant-test-print.service")
    done = ant(
        "service", "install", "--print", "--name", "ant-test-print", "--config", str(config),
        "--host", "127.0.0.1", "--no-tls", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not system_unit.exists()
    unit = parse(done.stdout)
    assert unit["Service"]["User"] == "alice"  # who ran sudo, not root
    assert unit["Service"]["KillMode"] == "process"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    words = exec_start(unit)
    # The state directory the config names, relative to the working directory; % survives.
    assert words[words.index("--state-dir") + 1] == str(tmp_path / "state 100%")
    assert words[words.index("--config") + 1] == str(config)
    assert "--no-tls" in words and words[words.index("--host") + 1] == "127.0.0.1"
    path = tmp_path / "ant-test-print.service"
    path.write_text(done.stdout)
    verify(path)


def test_bad_options_are_one_line_and_write_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    for args, code, said in [
        (["--name", "../evil"], 2, "not a unit name"),
        (["--port", "70000"], 2, "not a port"),
        (["--user", "--run-as", "bob"], 2, "--run-as is for a system unit"),
        (["--workdir", str(tmp_path / "missing")], 8, "is not a directory"),
        (["--config", str(tmp_path / "none.json")], 8, "is not a file"),
    ]:
        done = ant("service", "install", "--user", *args, cwd=tmp_path, env=env)
        assert done.returncode == code and said in done.stderr, (args, done.stderr)
        assert done.stderr.strip().splitlines()[-1].startswith("ant: error: ")
    assert not (tmp_path / "config" / "systemd").exists()
    bare = ant("service", cwd=tmp_path, env=env)
    assert bare.returncode == 2 and "install" in bare.stderr


def test_the_units_command_serves_and_its_tasks_outlive_a_stop_of_ant(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """What systemd does with the unit, done by hand: start ExecStart in WorkingDirectory; stop
    it as KillMode=process does (SIGTERM to ANT's process alone); start it again."""
    port = free_port()
    printed = ant(
        "service", "install", "--print", "--user", "--host", "127.0.0.1", "--port", str(port),
        "--no-tls", cwd=tmp_path, env=env,
    )  # fmt: skip
    unit = parse(printed.stdout)
    workdir = Path(unit["Service"]["WorkingDirectory"])
    argv = [*exec_start(unit), "--fake-gpus", "1"]
    state = Path(argv[argv.index("--state-dir") + 1])
    serve_env = {k: v for k, v in env.items() if k != "ANT_TOKEN"}

    def start() -> subprocess.Popen[bytes]:
        out = (tmp_path / "serve.out").open("ab")
        proc = subprocess.Popen(argv, cwd=workdir, env=serve_env, stdout=out, stderr=out)
        wait_for(lambda: (state / "connection.json").exists() and up(port), timeout=30)
        return proc

    server = start()
    try:
        token = json.loads((state / "connection.json").read_text())["token"]
        headers = {"Authorization": f"Bearer {token}"}
        url = f"http://127.0.0.1:{port}"
        r = httpx.post(
            url + "/api/v1/tasks",
            json={"command": "sleep 300", "n_gpus": 1, "task_id": "long"},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        task = wait_for(lambda: (t := get(url, headers))["state"] == "running" and t)
        (state / "connection.json").unlink()
        server.send_signal(signal.SIGTERM)  # KillMode=process: ANT alone
        assert server.wait(30) == 0
        os.kill(task["pid"], 0)  # the task still runs
        server = start()
        again = get(url, headers)
        assert again["state"] == "running" and again["pid"] == task["pid"]  # re-adopted
        httpx.post(url + "/api/v1/tasks/long/kill", headers=headers)
        wait_for(lambda: get(url, headers)["state"] == "killed")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/", timeout=1).status_code == 200
    except httpx.HTTPError:
        time.sleep(0.05)
        return False


def get(url: str, headers: dict[str, str]) -> dict[str, object]:
    answer: dict[str, object] = httpx.get(url + "/api/v1/tasks/long", headers=headers).json()
    return answer
