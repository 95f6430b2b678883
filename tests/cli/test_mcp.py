"""`ant mcp` driven by the MCP SDK's own client (stdio_client + ClientSession spawn `ant mcp`)
against a live server: the tools list, submit (single and multi), list, show, logs, kill, wait,
gpus, restart, promote; failures are tool errors of one line (a wrong token too), no tracebacks."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.server import AntServer

ANT = str(Path(sys.executable).parent / "ant")
T = TypeVar("T")


def mcp_env(server: AntServer, token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ANT_URL", "ANT_TOKEN")}
    env.update(ANT_URL=server.url, XDG_CONFIG_HOME=str(server.workdir / "no-config"))
    if token is not None:
        env["ANT_TOKEN"] = token
    return env


def with_session(
    server: AntServer,
    body: Callable[[ClientSession], Awaitable[T]],
    token: str | None = None,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> T:
    """Spawn `ant mcp` (as an agent would), initialize, run `body`, close. By default from a
    directory without a connection file, the server named by ANT_URL/ANT_TOKEN."""
    if cwd is None:
        cwd = server.workdir / "elsewhere"
        cwd.mkdir(exist_ok=True)
    params = StdioServerParameters(
        command=ANT,
        args=["mcp"],
        env=env if env is not None else mcp_env(server, server.token if token is None else token),
        cwd=str(cwd),
    )
    errlog = (server.workdir / "mcp-stderr.txt").open("a")

    async def main() -> T:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await body(session)

    try:
        return asyncio.run(asyncio.wait_for(main(), 120))
    finally:
        errlog.close()


async def call(session: ClientSession, tool: str, **arguments: Any) -> Any:
    """A tool's answer (its JSON); a tool error fails the test with its message."""
    result = await session.call_tool(tool, arguments)
    text = "".join(getattr(block, "text", "") for block in result.content)
    assert not result.is_error, (tool, text)
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(text)


async def error_of(session: ClientSession, tool: str, **arguments: Any) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.is_error, (tool, result)
    text = "".join(getattr(block, "text", "") for block in result.content)
    assert "Traceback" not in text and "\n" not in text.strip(), text
    return text


def test_tools_drive_a_live_server(server: AntServer) -> None:
    async def body(s: ClientSession) -> None:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert set(tools) >= {
            "submit",
            "list_tasks",
            "show_task",
            "logs",
            "kill",
            "restart",
            "promote",
            "restore",
            "wait",
            "gpus",
        }
        # The descriptions teach the seed's conventions.
        described = json.dumps([t.model_dump(mode="json") for t in tools.values()])
        for convention in ("ant_wd", "{rand int", "[uuid8]", "unique"):
            assert convention in described or convention in (s.server_instructions or ""), (
                convention
            )

        out = await call(
            s,
            "submit",
            command="echo hello from mcp $GREETING port={rand int 4000 4999}",
            task_id="mcp-[uuid8]",
            env={"GREETING": "hi", "ant_wd": str(server.workdir)},
            n_gpus=1,
            tags=["agent"],
        )
        [task] = out["tasks"]
        task_id = task["task_id"]
        assert task_id.startswith("mcp-") and len(task_id) == len("mcp-") + 8
        waited = await call(s, "wait", task_ids=[task_id], timeout=60)
        assert waited["all_succeeded"] and waited["pending"] == []
        assert waited["tasks"][0]["state"] == "succeeded"
        log = await call(s, "logs", task_id=task_id, lines=5)
        assert "hello from mcp hi port=4" in log["text"] and log["state"] == "succeeded"
        shown = await call(s, "show_task", task_id=task_id)
        assert shown["n_gpus"] == 1 and shown["tags"] == ["agent"] and "handle" not in shown
        assert shown["workdir"] == str(server.workdir)

        # Multi mode, dependencies and a kill.
        multi = await call(
            s,
            "submit",
            command="ant_task_id=mcp-long sleep 60\nant_task_id=mcp-next ant_after=[prev] true",
            mode="multi",
        )
        assert [t["task_id"] for t in multi["tasks"]] == ["mcp-long", "mcp-next"]
        assert multi["tasks"][1]["after"] == [{"task_id": "mcp-long", "condition": "ok"}]
        listed = await call(s, "list_tasks", state=["running", "queued"])
        assert {t["task_id"] for t in listed["tasks"]} == {"mcp-long", "mcp-next"}
        assert listed["total"] == 2
        killed = await call(s, "kill", task_ids=["mcp-long"])
        assert killed["tasks"][0]["task_id"] == "mcp-long"
        ended = await call(s, "wait", task_ids=["mcp-long", "mcp-next"], timeout=60)
        states = {t["task_id"]: t["state"] for t in ended["tasks"]}
        assert states == {"mcp-long": "killed", "mcp-next": "dependency_failed"}
        assert not ended["all_succeeded"]

        # A wait that times out says what is still pending (not an error).
        await call(s, "submit", command="sleep 30", task_id="mcp-slow")
        slow = await call(s, "wait", task_ids=["mcp-slow"], timeout=0.5)
        assert slow["pending"] == ["mcp-slow"] and slow["tasks"] == []

        # Promote a queued task, restart an ended one.
        await call(s, "submit", command="sleep 30", task_id="mcp-hog", n_gpus=4)
        await call(s, "submit", command="true", task_id="mcp-q1", n_gpus=1)
        await call(s, "submit", command="true", task_id="mcp-q2", n_gpus=1)
        promoted = await call(s, "promote", task_id="mcp-q2")
        assert (promoted["state"], promoted["queue_position"]) == ("queued", 1)
        behind = await call(s, "show_task", task_id="mcp-q1")
        assert behind["queue_position"] == 2
        copy = await call(s, "restart", task_id=task_id)
        assert copy["task_id"] == f"{task_id}-restart-1"

        gpus = (await call(s, "gpus"))["gpus"]
        assert len(gpus) == 4 and {"index", "state", "task_ids"} <= set(gpus[0])
        assert "mcp-hog" in {i for g in gpus for i in g["task_ids"]}
        killed = await call(s, "kill", task_ids=["mcp-q1", "mcp-q2", "mcp-hog", "mcp-slow"])
        assert [t["task_id"] for t in killed["tasks"]] == [
            "mcp-q1",
            "mcp-q2",
            "mcp-hog",
            "mcp-slow",
        ]
        # Two tasks asking for GPU memory share one GPU (P13's packing, through MCP too).
        for name in ("mcp-mem-a", "mcp-mem-b"):
            await call(s, "submit", command="sleep 30", task_id=name, gpu_mem="2G")
        shared = [await call(s, "show_task", task_id=n) for n in ("mcp-mem-a", "mcp-mem-b")]
        assert [t["gpu_mem"] for t in shared] == [2 * 2**30] * 2
        assert "gpu_mem must be a size" in await error_of(s, "submit", command="true", gpu_mem="x")
        await call(s, "kill", task_ids=["mcp-mem-a", "mcp-mem-b"])
        await call(s, "submit", command="sleep 30", task_id="mcp-last")
        partly = await call(s, "kill", task_ids=["mcp-last", "nope"])
        assert [t["task_id"] for t in partly["tasks"]] == ["mcp-last"]
        assert partly["errors"] == ["no task with id 'nope'"]
        assert "nothing to kill" in await error_of(s, "kill", task_ids=["mcp-last"])

        # Errors: one line each, and the server changed nothing.
        assert "no task with id 'nope'" in await error_of(s, "show_task", task_id="nope")
        assert "task id" in await error_of(s, "submit", command="true", task_id="bad id")
        assert "duplicate" in await error_of(s, "submit", command="true", task_id=task_id)
        await error_of(s, "logs", task_id=task_id, lines=0)  # out of range: refused by schema

    with_session(server, body)


def test_a_wrong_token_is_a_tool_error(server: AntServer) -> None:
    async def body(s: ClientSession) -> list[str]:
        return [
            await error_of(s, "list_tasks"),
            await error_of(s, "submit", command="true", task_id="never"),
        ]

    messages = with_session(server, body, token="wrong-token")
    assert all("token" in m.lower() for m in messages), messages
    with server.client() as c:
        assert c.get("/api/v1/tasks").json()["total"] == 0


def test_found_through_the_connection_file_as_the_cli_does(
    server_factory: type[AntServer],
) -> None:
    """No ANT_URL, no ANT_TOKEN: run where `ant serve` runs, it reads the connection file (and
    its local socket), as `ant` does."""
    server = server_factory(tls=True, config={"LOGGER_log_dir": "ant_runner_logs"}).start()
    env = {k: v for k, v in os.environ.items() if k not in ("ANT_URL", "ANT_TOKEN")}
    env["XDG_CONFIG_HOME"] = str(server.workdir / "no-config")

    async def body(s: ClientSession) -> Any:
        await call(s, "submit", command="echo via the file", task_id="local-1")
        return await call(s, "wait", task_ids=["local-1"], timeout=60)

    done = with_session(server, body, env=env, cwd=server.workdir)
    assert done["all_succeeded"]


def test_without_a_server_configured_the_tools_say_so(tmp_path: Path) -> None:
    fake = AntServer(workdir=tmp_path)  # never started: its URL answers nothing

    async def body(s: ClientSession) -> str:
        return await error_of(s, "gpus")

    message = with_session(fake, body)
    assert "cannot reach ANT" in message


@pytest.mark.parametrize("args", [["mcp", "--help"]])
def test_help(args: list[str]) -> None:
    import subprocess

    r = subprocess.run([ANT, *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "claude mcp add ant -- ant mcp" in r.stdout


def test_without_the_sdk_it_says_how_to_install_it(tmp_path: Path) -> None:
    import subprocess

    shadow = tmp_path / "shadow"
    (shadow / "mcp").mkdir(parents=True)
    (shadow / "mcp" / "__init__.py").write_text(
        "raise ModuleNotFoundError('No module', name='mcp')"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow), *sys.path])}
    r = subprocess.run([ANT, "mcp"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 8 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "ant: error: ant mcp needs the MCP Python SDK (mcp is missing): "
        "pip install 'ant-scheduler[mcp]'"
    ]
