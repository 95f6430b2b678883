"""The light client: what `ant` imports, how it speaks HTTP/1.1, `ant wait` on the event stream,
and exit codes derived from the error classes. Real servers only (ANT's, or a few lines of
http.server where a server must misbehave on purpose); nothing here is timed."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ant_scheduler.cli import app
from ant_scheduler.cli.commands import _wait
from ant_scheduler.client import Client, ClientError
from ant_scheduler.core import errors
from tests.cli.test_cli import Ant
from tests.server import AntServer

REPO = Path(__file__).resolve().parents[2]
SERVER_SIDE = {"pydantic", "pydantic_core", "fastapi", "starlette", "uvicorn", "httpx", "anyio"}


# ------------------------------------------------------------------------------ imports


def imported(ant: Ant, *args: str) -> set[str]:
    """Top-level packages `python -m ant_scheduler.cli ARGS` imported (from -X importtime)."""
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ant_scheduler.cli", *args],
        env=ant.env,
        cwd=ant.server.workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, (args, r.stdout, r.stderr[-2000:])
    lines = [line for line in r.stderr.splitlines() if line.startswith("import time:")]
    names = {line.rsplit("|", 1)[1].strip() for line in lines[1:]}
    return {name.split(".")[0] for name in names}


def test_the_cli_imports_nothing_of_the_server_and_rich_only_for_tables(ant: Ant) -> None:
    task_id = ant("submit", "--", "echo hi").stdout.strip()
    ant("wait", task_id)
    for args in (
        ("submit", "--", "true"),
        ("submit", "--json", "--", "true"),
        ("wait", task_id),
        ("show", "--json", task_id),
        ("ls", "--json", "-n", "5"),
        ("logs", task_id),
        ("gpus", "--json"),
        ("health",),
        ("login-url",),
        ("--help",),
    ):
        modules = imported(ant, *args)
        assert "ant_scheduler" in modules, args
        unwanted = SERVER_SIDE | {"rich", "click"}  # click: 22 ms; argparse does it in 2
        assert not modules & unwanted, (args, modules & unwanted)
    for args in (("ls", "-n", "5"), ("show", task_id), ("gpus",)):
        modules = imported(ant, *args)
        assert "rich" in modules, args  # a table was printed
        assert not modules & SERVER_SIDE, (args, modules & SERVER_SIDE)


def imported_modules(ant: Ant, *args: str) -> set[str]:
    """Every module `python -m ant_scheduler.cli ARGS` imported, by its full name."""
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ant_scheduler.cli", *args],
        env=ant.env,
        cwd=ant.server.workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, (args, r.stdout, r.stderr[-2000:])
    lines = [line for line in r.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}


def test_submit_loads_only_what_it_needs(ant: Ant) -> None:
    """`ant submit` is the command run in loops: none of what only other commands need (the
    answers' dataclasses, the task model, dataclasses/inspect, typing, pathlib, urllib.parse)."""
    heavy = {"ant_scheduler.wire", "ant_scheduler.core.task", "dataclasses", "inspect"}
    heavy |= {"typing", "pathlib", "urllib.parse", "ipaddress"}
    for args in (("submit", "--", "true"), ("submit", "--json", "--", "true")):
        modules = imported_modules(ant, *args)
        assert "ant_scheduler.client" in modules, args
        assert not modules & heavy, (args, modules & heavy)


def test_importing_the_client_loads_no_server_side_and_no_cli() -> None:
    code = "import sys, ant_scheduler.client; print(' '.join(sorted(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    modules = {name.split(".")[0] for name in r.stdout.split()}
    assert "ant_scheduler" in modules
    assert not modules & (SERVER_SIDE | {"rich", "click", "ssl"}), modules


# ------------------------------------------------------------------------------ URLs


def test_plain_urls_are_split_without_urllib() -> None:
    from ant_scheduler.client import _PlainUrl, _split_url

    for url in ("https://127.0.0.1:6060", "http://localhost:8080/ant/x", "http://my-host.lan"):
        assert isinstance(_split_url(url), _PlainUrl), url
    for url in ("HTTPS://h", "https://H:1", "https://h:1?x", "https://[::1]:1", "https://u@h"):
        assert not isinstance(_split_url(url), _PlainUrl), url


URL_PIECES = ["http", "https", "://", ":", "/", "h", "H", "1", "0", "99999", "65535", ".", "-"]
URL_PIECES += ["@", "[", "]", "?", "#", "%", " ", "\t", "\n", "\x00", "é", "٣", "_", "~"]
PLAIN = ["h", "a", "1", "0", "00", "65535", "65536", "99999", ".", "-", "_", "~", "/", "Z"]


def url_of(words: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """scheme :// host [: port] [/ path], each piece sometimes missing or odd."""
    return st.tuples(
        st.sampled_from(["http", "https", "https", "HTTPS", "ftp", ""]),
        st.sampled_from(["://", "://", ":/", ""]),
        words,
        st.sampled_from(["", ":"]),
        words,
        st.sampled_from(["", "/"]),
        words,
    ).map("".join)


URLS = st.one_of(  # mostly what plain URLs are made of, else anything
    url_of(st.lists(st.sampled_from(PLAIN), max_size=4).map("".join)),
    url_of(st.lists(st.sampled_from(URL_PIECES), max_size=4).map("".join)),
)


@settings(max_examples=3000, deadline=None)
@given(URLS)
def test_a_url_is_read_as_urllib_reads_it(url: str) -> None:
    """client._split_url reads what it reads itself exactly as urllib.parse does."""
    from urllib.parse import urlsplit

    from ant_scheduler.client import _PlainUrl, _split_url

    try:
        parts = _split_url(url)
    except ValueError:
        return  # urllib.parse's own refusal (an unclosed "["): not a plain URL
    if isinstance(parts, _PlainUrl):
        expected = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.path) == (
            expected.scheme,
            expected.netloc,
            expected.path,
        )
        assert (parts.hostname, parts.port) == (expected.hostname, expected.port)


def cli_imports(module: str) -> set[str]:
    """The ant_scheduler.cli modules that `module` imports, at any level of the file."""
    tree = ast.parse((REPO / "src" / (module.replace(".", "/") + ".py")).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found |= {n for n in names if n.startswith("ant_scheduler.cli.")}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ant_scheduler.cli.")}
    return found


def test_no_cli_module_imports_one_that_imports_it_back() -> None:
    modules = {
        f"ant_scheduler.cli.{p.stem}"
        for p in (REPO / "src" / "ant_scheduler" / "cli").glob("*.py")
        if p.stem not in ("__init__", "__main__")
    }
    graph = {m: cli_imports(m) & modules for m in modules}
    assert graph["ant_scheduler.cli.main"] >= {
        "ant_scheduler.cli.app",
        "ant_scheduler.cli.commands",
    }

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph[start] - seen:
            if nxt == target or reaches(nxt, target, seen | {nxt}):
                return True
        return False

    for module in modules:
        assert not reaches(module, module, set()), f"{module} is part of an import cycle"


# ------------------------------------------------------------------------------ exit codes


def all_subclasses(cls: type) -> set[type]:
    return {c for sub in cls.__subclasses__() for c in {sub} | all_subclasses(sub)}


def import_every_module() -> None:
    """Every module of the package, so that the error classes it defines are known to the check
    whichever tests ran before in this process."""
    import importlib
    import pkgutil

    import ant_scheduler

    for info in pkgutil.walk_packages(ant_scheduler.__path__, "ant_scheduler."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)


def test_every_server_error_class_has_a_deliberate_exit_code() -> None:
    import_every_module()
    for cls in all_subclasses(errors.AntError) | {errors.AntError}:
        assert cls.code in app.EXIT_BY_CODE, f"{cls.__name__}: give it an exit code in cli/app.py"
    expected = {
        errors.TaskNotFound: app.EXIT_NOT_FOUND,
        errors.GpuNotFound: app.EXIT_NOT_FOUND,
        errors.DuplicateTaskId: app.EXIT_CONFLICT,
        errors.InvalidTransition: app.EXIT_CONFLICT,
        errors.TaskRejected: app.EXIT_REJECTED,
        errors.PayloadTooLarge: app.EXIT_REJECTED,
        errors.WrongToken: app.EXIT_UNAUTHORIZED,
        errors.StoreBusy: app.EXIT_UNAVAILABLE,
    }
    for cls, code in expected.items():
        assert app.exit_code_for(ClientError(cls.code, "m", cls.status)) == code, cls
    # What the HTTP layer answers by itself, by status; anything else is "another error".
    assert app.exit_code_for(ClientError("csrf_failed", "m", 403)) == app.EXIT_UNAUTHORIZED
    assert app.exit_code_for(ClientError("not_found", "m", 404)) == app.EXIT_NOT_FOUND
    assert app.exit_code_for(ClientError("something_new", "m", 409)) == app.EXIT_OTHER
    assert app.exit_code_for(ClientError("http_error", "HTTP 500", 500)) == app.EXIT_OTHER


def test_every_exit_code_is_documented() -> None:
    codes = {v for k, v in vars(app).items() if k.startswith("EXIT_") and isinstance(v, int)}
    assert app.EXIT_TIMEOUT == 11 and len(codes) == 12  # 1-11 and 130
    cli_doc = (REPO / "docs" / "cli.md").read_text()
    table = cli_doc.split("## Exit codes", 1)[1]
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", table, flags=re.M)}
    assert documented == codes | {0}
    skill = (REPO / "skills" / "ant-scheduler-control" / "SKILL.md").read_text()
    skill_codes = skill.split("## Exit codes", 1)[1]
    for code in codes:
        assert re.search(rf"(^|· ){code} ", skill_codes, flags=re.M), code


# ------------------------------------------------------------------------------ ant wait


@pytest.fixture
def ant(server: AntServer) -> Ant:
    return Ant(server)


class CountingClient(Client):
    reads = 0

    def get_task(self, task_id: str) -> Any:
        CountingClient.reads += 1
        return super().get_task(task_id)


def test_wait_follows_events_instead_of_polling(ant: Ant, server: AntServer) -> None:
    ant("submit", "--id", "slow", "--", "sleep 2; exit 3")
    CountingClient.reads = 0
    with CountingClient(server.url, server.token) as client:
        done, pending = _wait(client, ["slow"], None)
    assert pending == [] and done["slow"].exit_code == 3
    # Read when the wait begins and when the stream says hello; the end comes in the event.
    # Polling every 0.2 s would have read it about ten times.
    assert CountingClient.reads <= 2


def test_wait_timeout_has_its_own_exit_code(ant: Ant) -> None:
    ant("submit", "--id", "never", "-g", "8", "--", "true")  # 4 GPUs: it never starts
    r = ant("wait", "--timeout", "0.5", "never", ok=False)
    assert r.returncode == app.EXIT_TIMEOUT == 11
    assert r.stderr == "ant: error: timed out waiting for never\n"
    ant("submit", "--id", "ok", "--", "true")
    r = ant("wait", "--timeout", "5", "ok", "never", ok=False)
    assert r.returncode == 11 and "never" in r.stderr and "ok" not in r.stderr


def test_wait_for_a_task_removed_meanwhile_is_not_found(ant: Ant) -> None:
    ant("submit", "--id", "doomed", "-g", "8", "--", "true")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ant_scheduler.cli", "wait", "doomed"],
        env=ant.env,
        cwd=ant.server.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)  # lets the wait subscribe first, most of the time (either way: exit 5)
    ant("rm", "doomed")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == app.EXIT_NOT_FOUND, err
    assert err.startswith("ant: error: no task")


# ------------------------------------------------------------------------------ HTTP/1.1


def task_json(task_id: str, state: str) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "command": "true",
        "submitted": "true",
        "n_gpus": 0,
        "env": {},
        "state": state,
        "priority": 0,
        "created_at": 1.0,
        "exit_code": 0 if state == "succeeded" else None,
    }


class Scripted(BaseHTTPRequestHandler):
    """A small HTTP/1.1 server: a task read as running twice then succeeded, an event stream
    that says hello then resync, and answers that close the connection without saying so."""

    protocol_version = "HTTP/1.1"
    connections = 0
    task_reads = 0
    states = ("running", "running", "succeeded")
    submit_answer: Any = None  # what POST /api/v1/tasks answers

    def setup(self) -> None:
        super().setup()
        type(self).connections += 1

    def send_json(self, data: Any, close: bool = False, status: int = 200) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = close  # closes without a Connection: close header

    def do_GET(self) -> None:
        cls = type(self)
        if self.path == "/api/":
            self.send_json({"status": "ok", "version": "x"})
        elif self.path.startswith("/api/v1/server?closing"):
            self.send_json({"status": "ok", "version": "x"}, close=True)
        elif self.path == "/api/v1/tasks/x":
            cls.task_reads += 1
            self.send_json(task_json("x", cls.states[min(cls.task_reads, 3) - 1]))
        elif self.path == "/api/v1/events":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for event in (
                b"id: b:1\nevent: hello\ndata: {}\n\n",
                b": keepalive\n\n",
                b'id: b:2\nevent: queue\ndata: {"queued": 0, ',  # cut in two chunks
                b'"added": 0}\n\nid: b:9\nevent: resync\r\ndata: {}\r\n\r\n',
            ):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
                time.sleep(0.05)
            time.sleep(30)  # then nothing: the client leaves when its task has ended
        else:
            self.send_json({"error": {"code": "not_found", "message": "nope"}}, status=404)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/api/v1/tasks":
            self.send_json(type(self).submit_answer, status=201)
        else:
            self.send_json({"error": {"code": "not_found", "message": "nope"}}, status=404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[str]:
    Scripted.connections = Scripted.task_reads = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_the_client_knows_the_fields_of_a_task() -> None:
    """client._TASK_FIELDS & co. say what wire.TaskOut is, for `submit_json` (which does not
    import wire.py): its fields in order, the lists, the dicts and the states."""
    import dataclasses
    import typing

    from ant_scheduler import client
    from ant_scheduler.core.task import TaskState
    from ant_scheduler.wire import TaskOut

    fields = dataclasses.fields(TaskOut)
    assert tuple(f.name for f in fields) == client._TASK_FIELDS
    hints = typing.get_type_hints(TaskOut)

    def kind(name: str) -> set[Any]:
        hint = hints[name]
        options = typing.get_args(hint) if typing.get_origin(hint) is types.UnionType else [hint]
        return {typing.get_origin(o) or o for o in options} - {type(None)}

    assert set(client._TASK_LISTS) == {f.name for f in fields if kind(f.name) == {list}}
    assert set(client._TASK_DICTS) == {f.name for f in fields if kind(f.name) == {dict}}
    assert {f.name for f in fields if kind(f.name) == {TaskState}} == {"state"}
    assert {s.value for s in TaskState} == client._TASK_STATES
    for name in client._TASK_FIELDS:  # every other one is taken as it is by parse()
        assert kind(name) <= {str, int, float, list, dict, TaskState}, name


def submit_answers() -> Iterator[Any]:
    """Answers to POST /api/v1/tasks: the server's own shape, then others a client may meet."""
    task = {**task_json("a", "queued"), "workdir": None, "gpu_ids": [], "queue_seq": 1}
    task |= dict.fromkeys(("started_at", "finished_at", "log_path", "pid", "handle"))
    task |= dict.fromkeys(("session_id", "reason", "restarted_as", "queue_position"))
    task |= {"restarted_from": None, "timeout": None, "notify": None}
    task |= {"tags": ["sweep"], "after": [], "owner": "admin"}
    task |= {"gpu_mem": 20 * 2**30, "placement": "GPU 0 shared", "gpu_mem_over": None}
    task |= {"retries": 2, "retry_on": ["failure"], "retry_backoff": 30.0}
    task |= {"attempt": 1, "attempts": [], "retry_at": None}
    task |= {"n_nodes": 1, "nodes": [], "pending_reason": "no GPU", "gpu_mem_used": None}
    task |= {"lingering_processes": 0, "copy_command": "true", "env": {"K": "V"}}
    from ant_scheduler.client import _TASK_FIELDS

    exact = {name: task[name] for name in _TASK_FIELDS}
    yield {"tasks": [exact, {**exact, "task_id": "b", "handle": {"pid": 3}, "gpu_ids": [0]}]}
    yield {"tasks": []}
    yield {"tasks": [{**exact, "new_field": 1}]}  # a newer server: dropped
    yield {"tasks": [{k: v for k, v in exact.items() if k != "copy_command"}]}  # default
    yield {"tasks": [dict(reversed(exact.items()))]}  # in TaskOut's order again
    yield {"tasks": [{**exact, "state": None, "env": None, "nodes": None}]}
    ended = {"attempt": 1, "state": "failed", "exit_code": 1, "started_at": 1.0}
    ended |= {"finished_at": 2.0, "log_path": "/l", "reason": None, "handle": None}
    yield {"tasks": [{**exact, "attempts": [ended]}]}  # read as parse() reads it
    yield {"tasks": [{**exact, "gpu_ids": "01", "env": [["K", "V"]]}]}  # as parse() reads them
    yield {"tasks": [{**exact, "state": "paused"}]}  # BadResponse, both ways
    yield {"tasks": [{"task_id": "x"}]}
    yield {"tasks": {"a": 1}}
    yield {"id": "a"}
    yield [1]


def test_submit_json_is_asdict_of_submit(scripted: str) -> None:
    import dataclasses

    with Client(scripted, "t") as client:
        for answer in submit_answers():
            Scripted.submit_answer = answer
            try:
                expected: Any = [dataclasses.asdict(t) for t in client.submit("true")]
            except ClientError as exc:
                expected = (type(exc), exc.code, exc.message)
            try:
                got: Any = client.submit_json("true")
            except ClientError as exc:
                got = (type(exc), exc.code, exc.message)
            assert json.dumps(got, default=repr) == json.dumps(expected, default=repr), answer


def test_wait_rereads_the_tasks_on_resync(scripted: str, tmp_path: Path) -> None:
    env = {**os.environ, "ANT_URL": scripted, "ANT_TOKEN": "t"}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "ant_scheduler.cli", "wait", "--json", "x"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tasks"][0]["state"] == "succeeded"
    assert Scripted.task_reads == 3  # at the start, on hello, on resync


def test_one_connection_is_kept_and_a_closed_one_replaced(scripted: str) -> None:
    with Client(scripted, "t") as client:
        for _ in range(3):
            assert client.health()["status"] == "ok"
        assert Scripted.connections == 1
        client._json("GET", "/api/v1/server", params={"closing": ""})  # the server hangs up
        time.sleep(0.2)
        assert client.health()["status"] == "ok"  # on a new connection, not an error
        assert Scripted.connections == 2
        with pytest.raises(ClientError) as err:
            client.get_task("gone")
        assert err.value.code == "not_found"  # an error answer keeps the connection
        assert client.health()["status"] == "ok" and Scripted.connections == 2


def test_a_long_answer_in_chunks(server_factory: type[AntServer]) -> None:
    server = server_factory(fake_gpus=1).start()
    lines = "".join(f"ant_task_id=c{i} true\n" for i in range(1200))  # > 1000: streamed
    with Client(server.url, server.token) as client:
        tasks = client.submit(lines, mode="multi", n_gpus=2)  # 2 GPUs of 1: they stay queued
        assert [t.task_id for t in tasks] == [f"c{i}" for i in range(1200)]
        assert client.list_tasks(limit=1)[1] == 1200  # and the connection goes on
