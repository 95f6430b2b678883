"""The `ant` CLI against a real server: every command, --json shapes, and each error path."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from ant_scheduler.cli.main import main
from tests.server import AntServer, free_port, wait_for

ANT = str(Path(sys.executable).parent / "ant")


class Ant:
    """Runs `ant` as a subprocess against one server, from a directory with no connection file."""

    def __init__(self, server: AntServer) -> None:
        self.server = server
        self.env = {
            **os.environ,
            "ANT_URL": server.url,
            "ANT_TOKEN": server.token or "",
            "XDG_CONFIG_HOME": str(server.workdir / "no-config"),
            "NO_COLOR": "1",
        }

    def __call__(
        self, *args: str, stdin: str | None = None, ok: bool = True
    ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [ANT, *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.server.workdir,
        )
        assert "Traceback" not in r.stderr, r.stderr
        if ok:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r

    def json(self, *args: str, stdin: str | None = None) -> Any:
        """Run with --json (before a `--`, so it is not taken as part of the command)."""
        split = args.index("--") if "--" in args else len(args)
        return json.loads(self(*args[:split], "--json", *args[split:], stdin=stdin).stdout)


@pytest.fixture
def ant(server: AntServer) -> Ant:
    return Ant(server)


def test_submit_prints_ids_and_json(ant: Ant) -> None:
    r = ant(
        "submit",
        "-g",
        "2",
        "--id",
        "exp-[phrase]",
        "-e",
        "KEY=VAL",
        "--",
        "echo",
        "hello",
        "world",
    )
    task_id = r.stdout.strip()
    assert task_id.startswith("exp-")
    shown = ant.json("show", task_id)
    assert shown["n_gpus"] == 2 and shown["env"] == {"KEY": "VAL"}
    assert shown["command"] == "echo hello world"
    data = ant.json("submit", "-p", "3", "--", "echo a && echo b")
    assert set(data) == {"tasks"} and data["tasks"][0]["priority"] == 3
    assert data["tasks"][0]["command"] == "echo a && echo b"
    assert ant("wait", task_id).returncode == 0


def test_submit_keeps_the_quoting_of_several_words(ant: Ant) -> None:
    """P11: the words are shell-joined, so what runs is what was typed; one argument is the
    command line as it is (for operators and variables of the task's own shell)."""
    r = ant("submit", "-f", "--", "python3", "-c", "import os; print(1)")
    assert r.stdout.split()[1:] == ["1"]
    task_id = ant("submit", "--", "ant_task_id=q-[phrase]", "X=a b", "printf", "%s|", "$X", "it's")
    task_id_text = task_id.stdout.strip()
    assert task_id_text.startswith("q-")  # the leading ant_ word is still read
    ant("wait", task_id_text)
    assert ant("logs", task_id_text).stdout.strip() == "$X|it's|"  # quoted: not expanded
    port = ant("submit", "-f", "--", "echo", "port={rand", "int", "4000", "4009}")
    assert 4000 <= int(port.stdout.split()[1].split("=")[1]) <= 4009  # still one template
    r = ant("submit", "-f", "--", "X='a b'; printf '%s|' \"$X\"")
    assert r.stdout.split("\n")[1] == "a b|"  # one argument: the task's shell reads it


def test_submit_multi_from_file_and_stdin(ant: Ant, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("ant_task_id=m1 echo one\n# skip\nant_task_id=m2 echo \\\n two\n")
    assert ant("submit", "--multi", str(jobs)).stdout.split() == ["m1", "m2"]
    out = ant.json(
        "submit", "--multi", "-", "-g", "1", stdin="ant_task_id=s1 true\nant_task_id=s2 true\n"
    )
    assert [t["task_id"] for t in out["tasks"]] == ["s1", "s2"]
    assert all(t["n_gpus"] == 1 for t in out["tasks"])
    ant("wait", "m1", "m2", "s1", "s2")
    assert "two" in ant("logs", "m2").stdout


def test_submit_follow_streams_and_returns_the_exit_code(ant: Ant) -> None:
    r = ant(
        "submit", "-f", "--id", "fol", "--", "echo start; sleep 0.5; echo end; exit 3", ok=False
    )
    assert r.returncode == 3
    assert r.stdout.split() == ["fol", "start", "end"]


def test_ls_table_and_json(ant: Ant) -> None:
    ant("submit", "--id", "blocker", "-g", "4", "--", "sleep 30")
    wait_for(lambda: ant.json("show", "blocker")["state"] == "running")
    ant("submit", "--id", "waiter", "-g", "1", "--", "true")
    table = ant("ls").stdout
    assert "blocker" in table and "running" in table and "waiter" in table
    assert "\x1b[" not in table  # not a terminal: no colour codes
    assert "needs 1 GPU" in table
    data = ant.json("ls", "--state", "queued")
    assert [t["task_id"] for t in data["tasks"]] == ["waiter"] and data["total"] == 1
    assert data["tasks"][0]["queue_position"] == 1
    assert ant.json("ls", "-q", "BLOCK")["total"] == 1
    ant("kill", "blocker")
    wait_for(lambda: ant.json("show", "waiter")["state"] == "succeeded")
    ended = ("ls", "--state", "killed,succeeded", "--sort", "task_id")
    assert [t["task_id"] for t in ant.json(*ended)["tasks"]] == ["waiter", "blocker"]
    assert [t["task_id"] for t in ant.json(*ended, "--asc")["tasks"]] == ["blocker", "waiter"]
    wrong = ant("ls", "--sort", "command", ok=False)
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr


def test_logs_tail_follow_and_json(ant: Ant) -> None:
    ant("submit", "--id", "lines", "--", "seq 1 50")
    ant("wait", "lines")
    assert ant("logs", "lines", "-n", "3").stdout.split() == ["48", "49", "50"]
    data = ant.json("logs", "lines", "-n", "2")
    assert data["text"] == "49\n50\n" and data["task_id"] == "lines"
    ant("submit", "--id", "slow", "--", "echo a; sleep 0.5; echo b; exit 4")
    r = ant("logs", "-f", "slow", ok=False)
    assert r.returncode == 4 and r.stdout.split() == ["a", "b"]


def test_kill_rm_restart_promote_wait(ant: Ant) -> None:
    ant("submit", "--id", "hog", "-g", "4", "--", "sleep 30")
    wait_for(lambda: ant.json("show", "hog")["state"] == "running")
    ant("submit", "--id", "q1", "-g", "1", "--", "true")
    ant("submit", "--id", "q2", "-g", "1", "--", "exit 1")
    promoted = ant.json("promote", "q2")
    assert promoted["tasks"][0]["queue_position"] == 1
    assert ant("promote", "q1").stdout.strip() == "promoted q1"
    killed = ant("kill", "hog").stdout
    assert killed.startswith("kill")
    r = ant("wait", "q1", "q2", ok=False)
    assert r.returncode == 1 and "q2: failed (exit 1)" in r.stdout
    assert ant.json("wait", "q1")["tasks"][0]["state"] == "succeeded"
    again = ant.json("restart", "q1")["tasks"][0]
    assert again["task_id"] == "q1-restart-1"
    assert ant("restart", "hog").stdout.strip() == "queued hog -> hog-restart-1"
    ant("kill", "hog-restart-1")
    assert ant("rm", "q2").stdout.strip() == "removed q2"
    assert ant.json("rm", "q1") == {"tasks": [{"task_id": "q1", "deleted": True}]}
    assert ant("show", "q1", ok=False).returncode == 5


def test_gpus_table_toggle_and_json(ant: Ant) -> None:
    table = ant("gpus").stdout
    assert "ANT Simulated GPU" in table and "free" in table
    data = ant.json("gpus")
    assert [g["index"] for g in data["gpus"]] == [0, 1, 2, 3]
    assert ant("gpus", "disable", "1", "2").stdout.split("\n")[:2] == [
        "GPU 1: disabled",
        "GPU 2: disabled",
    ]
    assert [g["state"] for g in ant.json("gpus")["gpus"]] == [
        "free",
        "disabled",
        "disabled",
        "free",
    ]
    assert ant.json("gpus", "enable", "1")["gpus"][0]["enabled"] is True
    r = ant("gpus", "enable", "9", ok=False)
    assert r.returncode == 5 and r.stderr.startswith("ant: error:")


def test_health(ant: Ant) -> None:
    assert ant("health").stdout.startswith("ok: ANT ")
    data = ant.json("health")
    assert data["status"] == "ok" and data["gpus"] == 4 and data["gpu_backend"] == "fake"


def test_recover_list_restore_forget(server_factory: type[AntServer]) -> None:
    server = server_factory(fake_gpus=1).start()
    ant = Ant(server)
    for name in ("r1", "r2", "r3"):
        ant("submit", "--id", name, "-g", "2", "--", "true")  # never fits on 1 GPU
    server.stop()
    server.start()
    data = ant.json("recover")
    assert sorted(t["task_id"] for t in data["last_session"]) == ["r1", "r2", "r3"]
    assert data["earlier_sessions"] == []
    assert "Last session: 3 task(s)" in ant("recover").stdout
    assert ant("recover", "restore", "r1").stdout.strip() == "restored r1"
    assert ant.json("recover", "forget", "r2") == {"tasks": [{"task_id": "r2", "deleted": True}]}
    restored = ant.json("recover", "restore", "--all")
    assert [t["task_id"] for t in restored["tasks"]] == ["r3"]
    assert ant("recover", "restore", "--all", ok=False).returncode == 7


def test_error_paths_have_distinct_codes_and_one_line(ant: Ant, server: AntServer) -> None:
    def err(*args: str, env: dict[str, str] | None = None, code: int) -> str:
        old = ant.env
        if env is not None:
            ant.env = {**old, **env}
        try:
            r = ant(*args, ok=False)
        finally:
            ant.env = old
        assert r.returncode == code, (args, r.returncode, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("ant: error: ")
        return r.stderr

    assert "cannot reach ANT" in err(
        "ls", env={"ANT_URL": f"http://127.0.0.1:{free_port()}"}, code=3
    )
    assert "wrong token" in err("ls", env={"ANT_TOKEN": "bad"}, code=4)
    assert "no task" in err("show", "ghost", code=5)
    ant("submit", "--id", "dup", "--", "true")
    assert "duplicate task id 'dup'" in err("submit", "--id", "dup", "--", "true", code=6)
    r = ant("submit", "--multi", "-", stdin="echo ok\nant_n_gpus=x echo bad\n", ok=False)
    assert r.returncode == 7 and "line 2" in r.stderr
    assert "unknown placeholder" in err("submit", "--id", "[nope]", "--", "true", code=7)
    assert "KEY=VALUE" in err("submit", "-e", "novalue", "--", "true", code=7)
    assert "nothing to submit" in err("submit", code=7)
    assert "ANT_URL" in err("ls", env={"ANT_URL": "", "ANT_TOKEN": ""}, code=3)
    r = ant("frobnicate", ok=False)
    assert r.returncode == 2


def test_connection_file_and_pinned_certificate(server_factory: type[AntServer]) -> None:
    server = server_factory(tls=True, config={"LOGGER_log_dir": "ant_runner_logs"}).start()
    env = {k: v for k, v in os.environ.items() if k not in ("ANT_URL", "ANT_TOKEN")}
    env["XDG_CONFIG_HOME"] = str(server.workdir / "elsewhere")
    r = subprocess.run(
        [ANT, "health", "--json"],
        cwd=server.workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["url"] == f"https://127.0.0.1:{server.port}"
    # From any directory, through ~/.config/ant/connection.json written by `ant serve`.
    env["XDG_CONFIG_HOME"] = str(server.workdir / ".config")
    r = subprocess.run([ANT, "ls"], cwd="/", env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # The pin is real: with another certificate in the file, TLS verification fails (over TCP:
    # the local socket, when there is one, needs no certificate; tests/cli/test_unix_socket.py).
    conn = server.workdir / "ant_runner_logs" / "connection.json"
    info = json.loads(conn.read_text())
    from ant_scheduler.tls import ensure_self_signed

    other, _ = ensure_self_signed(server.workdir / "other-cert")
    info["cert_path"] = str(other)
    info["unix_socket"] = None
    conn.write_text(json.dumps(info))
    env["XDG_CONFIG_HOME"] = str(server.workdir / "elsewhere")
    r = subprocess.run(
        [ANT, "ls"], cwd=server.workdir, env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 3 and "certificate" in r.stderr.lower()


COMMANDS = (
    "submit",
    "ls",
    "show",
    "logs",
    "kill",
    "rm",
    "restart",
    "promote",
    "wait",
    "gpus",
    "gpus enable",
    "gpus disable",
    "recover",
    "recover restore",
    "recover forget",
    "health",
    "login-url",
    "doctor",
    "serve",
)


def run_main(argv: list[str]) -> int:
    """`ant ARGV` in this process: its exit code (main returns when the command succeeded)."""
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        gc.unfreeze()  # main freezes what is loaded, for a short-lived process; not this one
    return 0


def test_in_process(
    server: AntServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANT_URL", server.url)
    monkeypatch.setenv("ANT_TOKEN", server.token or "")
    monkeypatch.setenv("NO_COLOR", "1")
    assert run_main(["submit", "--json", "--id", "inproc", "--", "true"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"][0]["task_id"] == "inproc"
    assert run_main(["wait", "inproc"]) == 0
    assert "inproc: succeeded (exit 0)" in capsys.readouterr().out
    for command in COMMANDS:
        for flag in ("--help", "-h"):
            assert run_main([*command.split(), flag]) == 0, command
            out = capsys.readouterr().out
            assert out.startswith("Usage: ") and "-h, --help" in out, command
    assert run_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"\n  {name} " in out for name in COMMANDS if " " not in name), out


def test_version_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from ant_scheduler import __version__

    assert run_main(["--version"]) == 0
    assert capsys.readouterr().out == f"ant, version {__version__}\n"
    for argv in (
        [],  # the help, as a usage error
        ["frobnicate"],
        ["--url", "http://127.0.0.1:1"],  # no command
        ["-x", "ls"],
        ["ls", "--url", "x"],  # the group's options come before the command
        ["ls", "extra"],
        ["ls", "-n"],
        ["ls", "--lim", "5"],  # no abbreviations
        ["submit", "-g", "x", "--", "true"],
        ["submit", "--json=1", "true"],
        ["submit", "--multi", "/nonexistent/jobs.txt"],
        ["show"],
        ["kill"],
        ["wait", "--timeout", "soon", "a"],
        ["gpus", "enable", "x"],
        ["gpus", "frob"],
        ["recover", "forget"],
        ["serve", "--port", "x"],
        ["serve", "--gpus", "a,b"],
    ):
        assert run_main(argv) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == "" and "Traceback" not in captured.err, argv
        assert captured.err.startswith("Usage: "), argv
        if argv:
            assert captured.err.splitlines()[-1].startswith("ant: error: "), argv


@pytest.mark.parametrize(
    ("argv", "options", "command"),
    [
        (["--", "echo", "a b", "&&", "x"], {}, ["echo", "a b", "&&", "x"]),
        (["python", "train.py", "--lr", "3e-4"], {}, ["python", "train.py", "--lr", "3e-4"]),
        # ant's own options anywhere before `--`; every other word, in order, is the command's
        (
            ["python", "x.py", "-g", "2", "--json"],
            {"n_gpus": 2, "as_json": True},
            ["python", "x.py"],
        ),
        (["--", "python", "x.py", "-g", "2"], {}, ["python", "x.py", "-g", "2"]),
        (["echo", "-n", "hi", "--x=1", "-"], {}, ["echo", "-n", "hi", "--x=1", "-"]),
        (["echo", "--", "-f"], {}, ["echo", "-f"]),  # the first `--` only
        (["--", "a", "--", "b"], {}, ["a", "--", "b"]),
        (["-fx", "y"], {"follow": True}, ["-x", "y"]),  # known letters of a cluster are ant's
        (["-xg2", "y"], {"n_gpus": 2}, ["-x", "y"]),
        (["-p", "-1", "--gpus=3", "x"], {"priority": -1, "n_gpus": 3}, ["x"]),
        (["--id", "--json", "x"], {"task_id": "--json"}, ["x"]),  # a value is taken as it is
        (["-e", "A=1", "-e=B", "--env", "C=a=b", "x"], {"env": ["A=1", "=B", "C=a=b"]}, ["x"]),
        (["--multi", "-", "-g", "1"], {"multi": "-", "n_gpus": 1}, []),
        (["--js", "x"], {}, ["--js", "x"]),  # no abbreviations: not ant's
        (["--timeout", "1h30m", "python", "x.py"], {"timeout": 5400.0}, ["python", "x.py"]),
        (["--notify", "https://h.example/x", "true"], {"notify": "https://h.example/x"}, ["true"]),
        (
            ["--retries", "3", "--retry-on", "lost,failure", "--retry-backoff", "1m", "x"],
            {"retries": 3, "retry_on": ["failure", "lost"], "retry_backoff": 60.0},
            ["x"],
        ),
        (["--after", "a", "--after", "b:any", "x"], {"after": ["a", "b:any"]}, ["x"]),
        (["--gpu-mem", "20G", "python", "x.py"], {"gpu_mem": 20 * 2**30}, ["python", "x.py"]),
    ],
)
def test_submit_takes_its_options_and_passes_the_rest_on(
    argv: list[str], options: dict[str, Any], command: list[str]
) -> None:
    """`ant submit`'s arguments are read as click read them (ignore_unknown_options)."""
    from ant_scheduler.cli import commands

    submit = commands.cli.subcommands["submit"]
    own, rest = submit.split(argv)
    params = vars(submit.parser("ant submit").parse_args(own))
    defaults = {
        "n_gpus": None,
        "n_nodes": None,
        "gpu_mem": None,
        "task_id": None,
        "timeout": None,
        "notify": None,
        "retries": None,
        "retry_on": None,
        "retry_backoff": None,
        "after": None,
        "tags": None,
        "env": None,
        "priority": 0,
        "multi": None,
        "follow": False,
        "as_json": False,
    }
    assert params == {**defaults, **options}
    assert rest == command


def test_login_url_from_the_connection_file(
    server_factory: type[AntServer], tmp_path: Path
) -> None:
    server = server_factory().start()
    env = {k: v for k, v in os.environ.items() if k not in ("ANT_URL", "ANT_TOKEN")}
    env["XDG_CONFIG_HOME"] = str(server.workdir / ".config")  # the copy `ant serve` writes there
    empty = tmp_path / "empty"
    empty.mkdir()

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [ANT, *args],
            cwd=empty,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in r.stderr, r.stderr
        return r

    wait_for(lambda: (server.workdir / ".config" / "ant" / "connection.json").exists())
    r = run("login-url")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{server.url}/?token={server.token}\n"
    login = httpx.get(r.stdout.strip(), follow_redirects=False)
    assert login.status_code == 303 and "ant_session=" in login.headers["set-cookie"]
    data = json.loads(run("login-url", "--json", "--check").stdout)
    assert data["login_url"] == r.stdout.strip() and data["url"] == server.url
    assert data["source"].endswith("connection.json")

    # The server is not contacted (it is stopped now) unless --check asks for it.
    server.stop()
    assert run("login-url").stdout == r.stdout
    r = run("login-url", "--check")
    assert r.returncode == 3 and r.stderr.startswith("ant: error: cannot reach ANT")
    # No connection file, no URL: the "unreachable / not configured" code, one line.
    r = run("login-url", XDG_CONFIG_HOME=str(tmp_path / "nothing"))
    assert r.returncode == 3 and r.stderr.count("\n") == 1 and "ANT_URL" in r.stderr
    # A URL without a token known for it: unauthorized.
    r = run("login-url", XDG_CONFIG_HOME=str(tmp_path / "nothing"), ANT_URL=server.url)
    assert r.returncode == 4 and "ANT_TOKEN" in r.stderr and r.stdout == ""
    r = run("login-url", ANT_URL="http://127.0.0.1:1", ANT_TOKEN="a b&c")
    assert r.stdout == "http://127.0.0.1:1/?token=a%20b%26c\n"


def test_doctor_and_an_unavailable_store(ant: Ant) -> None:
    report = ant.json("doctor")
    assert report["ok"] is True and report["problems"] == []
    assert "ok: store, memory and" in ant("doctor").stdout
    import sqlite3

    db = sqlite3.connect(ant.server.state_dir / "ant.db", isolation_level=None, timeout=30)
    db.execute("BEGIN IMMEDIATE")  # another process holds the database
    try:
        r = ant("submit", "--", "true", ok=False)
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert r.returncode == 10, r.stderr
    assert r.stderr.startswith("ant: error: the database is locked by another process")
    assert ant.json("ls")["total"] == 0
