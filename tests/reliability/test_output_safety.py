"""What `ant` shows is what was typed, and whatever goes wrong is one line, never a traceback.

User text with rich markup in it (`[/x]`, `[bold]`, `inline-[phrase]`) and terminal escapes goes
through real submissions, a real outside process on a (fake) GPU and a real broken GPU; faults come
from a real local server that answers garbage and from broken connection files. No mocks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ant_scheduler.cli.app import EXIT_INTERNAL
from tests.cli.test_cli import ANT, Ant, run_main
from tests.server import AntServer, wait_for

MARKUP = "[/x] [bold]loud[/bold] inline-[phrase] [link=http://evil]click[/link]"


def one_error_line(r: subprocess.CompletedProcess[str], code: int) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("ant: error: "), r.stderr
    return r.stderr


def test_markup_in_commands_and_env_is_shown_whole(server: AntServer) -> None:
    ant = Ant(server)
    ant("submit", "--id", "blocker", "-g", "4", "--", "sleep 60")
    wait_for(lambda: ant.json("show", "blocker")["state"] == "running")
    ant("submit", "--id", "markup", "-g", "1", "-e", "K=[/x][bold]v", "--", f"echo {MARKUP}")
    assert ant.json("show", "markup")["command"] == f"echo {MARKUP}"

    shown = ant("show", "markup").stdout
    assert f"echo {MARKUP}" in shown
    assert "K=[/x][bold]v" in shown
    table = ant("ls", "-n", "5").stdout
    assert "echo [/x] [bold]loud[/bold] inline-[phrase]" in table  # cut at 60 characters
    assert ant("ls", "-q", "inline-[phrase]").returncode == 0
    ant("kill", "markup", "blocker")


def test_terminal_escapes_are_made_visible(server: AntServer) -> None:
    ant = Ant(server)
    ant("submit", "--id", "esc", "-e", "T=\x1b[31mred", "--", "true \x1b]0;pwned\x07 \x1b[2J")
    for args in (("show", "esc"), ("ls",)):
        out = ant(*args).stdout
        assert "\x1b" not in out and "\x07" not in out
        assert "\\e]0;pwned\\x07 \\e[2J" in out
    assert "T=\\e[31mred" in ant("show", "esc").stdout
    r = ant("submit", "--id", "bad\x1b[2Jid", "--", "true", ok=False)
    assert r.returncode == 7 and "\x1b" not in r.stderr


@pytest.fixture
def outsider() -> Iterator[subprocess.Popen[bytes]]:
    """A process outside ANT whose command line is all markup (exec -a sets its argv[0])."""
    proc = subprocess.Popen(["bash", "-c", "exec -a '[/x][bold]job' sleep 300"])
    yield proc
    proc.kill()
    proc.wait()


def test_gpu_names_errors_external_use_and_pending_reasons_are_escaped(
    server_factory: type[AntServer], outsider: subprocess.Popen[bytes]
) -> None:
    config = {
        "ADGS_enabled": True,
        "ADGS_window_seconds": 0.5,
        "ADGS_grace_seconds": 1,
        "MONITORING_refresh_interval": 0.2,
    }
    server = server_factory(fake_gpus=2, config=config).start()
    ant = Ant(server)
    load = {
        "0": {"util": 0.95, "processes": [{"pid": outsider.pid, "used_memory": 4e9}]},
        "1": {"error": "[/x] fell off [bold]the bus"},
    }
    (server.log_dir / "fake_gpus.json").write_text(json.dumps(load))
    wait_for(lambda: ant.json("gpus")["gpus"][0]["state"] == "busy_external")
    wait_for(lambda: ant.json("gpus")["gpus"][1]["state"] == "unavailable")
    gpus = ant("gpus").stdout
    assert "[/x][bold]job 300" in gpus
    assert "unavailable ([/x] fell off [bold]the bus)" in gpus

    ant("submit", "--id", "waits", "-g", "1", "--", "true")
    reason = wait_for(lambda: ant.json("show", "waits")["pending_reason"])
    assert "[/x][bold]job" in reason
    assert "[/x][bold]job" in ant("ls").stdout
    assert "[/x][bold]job" in ant("show", "waits").stdout
    ant("kill", "waits")


ANSWERS = {
    "/api/": (200, b"{}"),
    "/api/v1/server": (200, b'{"version": []}'),
    "/api/v1/tasks": (200, b"<html>not json</html>"),
    "/api/v1/tasks/x": (200, b'{"task_id": 1}'),
    "/api/v1/gpus": (500, b"Internal Server Error"),
    "/api/v1/recovery": (409, b'{"error": {"code": "x", "message": "[/x] \\u001b[31mred"}}'),
}


class Garbage(BaseHTTPRequestHandler):
    """Answers every GET with a canned (status, body) by path: a server that is not (quite) ANT."""

    def do_GET(self) -> None:
        status, body = ANSWERS.get(self.path.split("?")[0], (404, b""))
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def garbage_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def run_ant(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("ANT_URL", "ANT_TOKEN")}
    full.update(env)
    full.setdefault("XDG_CONFIG_HOME", str(cwd / "no-config"))
    return subprocess.run(
        [ANT, *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=60
    )


def test_a_server_answering_garbage_gives_one_line(
    garbage_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"ANT_URL": garbage_url, "ANT_TOKEN": "t"}
    err = one_error_line(run_ant("ls", cwd=tmp_path, **env), EXIT_INTERNAL)
    assert "something other than JSON; is it an ANT server?" in err
    err = one_error_line(run_ant("show", "x", cwd=tmp_path, **env), EXIT_INTERNAL)
    assert "answered /api/v1/tasks/x in a shape ant cannot read" in err
    assert "not a valid TaskOut" in err
    err = one_error_line(run_ant("health", cwd=tmp_path, **env), EXIT_INTERNAL)
    assert "in a shape ant cannot read" in err and "is it an ANT server?" in err
    assert "HTTP 500" in one_error_line(run_ant("gpus", cwd=tmp_path, **env), 8)
    err = one_error_line(run_ant("recover", cwd=tmp_path, **env), 8)
    assert err == "ant: error: [/x] \\e[31mred\n"
    # ANT_DEBUG=1 is the way to the traceback, for bug reports.
    r = run_ant("show", "x", cwd=tmp_path, ANT_DEBUG="1", **env)
    assert r.returncode == EXIT_INTERNAL and "Traceback" in r.stderr

    # The same in-process (main()): an exit code, not an exception.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert run_main(["ls"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ant: error: ") and "Traceback" not in err


@pytest.mark.parametrize("content", ["[1, 2]", '{"token": "no-url"}', '{"url": 5, "token": "t"}'])
def test_a_broken_connection_file_gives_one_line(tmp_path: Path, content: str) -> None:
    state = tmp_path / "ant_runner_logs"
    state.mkdir()
    (state / "connection.json").write_text(content)
    for args in (("ls",), ("login-url",)):
        r = run_ant(*args, cwd=tmp_path)
        # 9 today (the client reads the file as it is); 3 if the client reports it as no config.
        assert r.returncode in (3, EXIT_INTERNAL)
        one_error_line(r, r.returncode)


def test_ctrl_c_exits_130_without_a_traceback(server: AntServer) -> None:
    ant = Ant(server)
    ant("submit", "--id", "chatty", "--", "echo ready; sleep 60")
    proc = subprocess.Popen(
        [ANT, "logs", "-f", "chatty"],
        env=ant.env,
        cwd=server.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a test run started in the background (`make test &`) has SIGINT
        # ignored, and a program that inherits that keeps ignoring it (found: a 30 s hang).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err
    ant("kill", "chatty")
