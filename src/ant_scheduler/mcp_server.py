"""`ant mcp`: a Model Context Protocol server over stdio, so that a coding agent (Claude Code,
Codex, any MCP client) drives ANT with tools instead of shell commands (docs/mcp.md).

Built on the MCP Python SDK (`mcp`, its MCPServer — FastMCP before mcp 2). Every tool is one or
two calls of ant_scheduler.client.Client, the CLI's: the same server discovery and auth (--url,
--token, ANT_URL/ANT_TOKEN, the connection file; its Unix socket when the server is local), the
same answers. A client is made per call, in a worker thread (the client is synchronous and not
thread-safe; the stdio loop stays free). A failure is a tool error with the one line the CLI would
print, never a traceback. The descriptions teach the seed's conventions: unique ids from
templates, `{rand int A B}` for ports, `ant_wd` instead of `cd`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from ant_scheduler import __version__
from ant_scheduler.client import Client, ClientError

T = TypeVar("T")

MAX_WAIT_SECONDS = 3600.0
MAX_LOG_LINES = 5000

INSTRUCTIONS = """\
ANT queues shell commands on a shared multi-GPU machine and gives each exactly the GPUs it asked
for (CUDA_VISIBLE_DEVICES). Submit with `submit`, watch with `list_tasks`/`show_task`/`logs`,
block until the end with `wait`. Conventions: give every task a unique, descriptive id — a
template makes one (`exp-lr3e-4-[uuid8]`, `[date]`, `[phrase]`, `[randint:1000:9999]`); never
`cd` in the command: pass env {"ant_wd": "/path/to/project"} (and "ant_conda_env": "name" for a
conda env); use `{rand int 29500 29999}` in the command for a free port (distributed training).
Queued tasks say why they wait (pending_reason). Held tasks (after a server restart or an import
from ANT 1.1) run again with `restore`."""

# What a listing shows of a task; `show_task` answers all of it.
_BRIEF = (
    "task_id",
    "state",
    "command",
    "n_gpus",
    "gpu_ids",
    "exit_code",
    "started_at",
    "finished_at",
    "reason",
    "pending_reason",
    "queue_position",
    "tags",
    "after",
    "gpu_mem",
    "owner",
)


def _plain(value: Any) -> Any:
    """JSON values only (states and nested dataclasses included)."""
    return json.loads(json.dumps(dataclasses.asdict(value), default=str))


def _task(task: Any, brief: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = _plain(task)
    data.pop("handle", None)  # the executor's, opaque
    return {k: data.get(k) for k in _BRIEF} if brief else data


def one_line(text: str) -> str:
    """A tool error as one line: the SDK's own (arguments that fail the schema) are pydantic's
    several lines, `field` then its indented message; ours are one line already."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.strip().startswith("For further information")]
    if len(lines) > 1 and "validation error" in lines[0]:
        head = lines[0].split(": ", 1)[0]
        problems, field = [], ""
        for line in lines[1:]:
            if not line.startswith(" "):
                field = line.strip()
                continue
            message = re.sub(r"\s*\[type=[^\]]*\]$", "", line.strip())
            problems.append(f"{field}: {message}" if field else message)
        return f"{head}: invalid arguments: " + "; ".join(problems)
    return " ".join(line.strip() for line in lines)


async def _one_line_errors(ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
    """Middleware: every tool error the agent reads is one line (see one_line)."""
    result = await call_next(ctx)
    if ctx.method != "tools/call":
        return result
    if isinstance(result, dict):  # the result as it is sent (the SDK serializes early)
        if result.get("isError") or result.get("is_error"):
            for block in result.get("content") or ():
                if isinstance(block, dict) and isinstance(block.get("text"), str):
                    block["text"] = one_line(block["text"])
    elif getattr(result, "is_error", False):
        for block in getattr(result, "content", None) or ():
            if isinstance(getattr(block, "text", None), str):
                block.text = one_line(block.text)
    return result


def build_server(connect: Callable[[], Client]) -> MCPServer:
    """The MCP server; `connect` makes a Client (Client.discover with the CLI's options)."""
    server = MCPServer(
        name="ant",
        title="ANT GPU scheduler",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",
        middleware=[_one_line_errors],
    )

    async def call(action: Callable[[Client], T]) -> T:
        def run() -> T:
            with connect() as client:
                return action(client)

        try:
            return await anyio.to_thread.run_sync(run)
        except ClientError as exc:
            raise ToolError(exc.message) from None
        except ToolError:
            raise
        except Exception as exc:  # never a traceback to the agent: one line
            detail = (str(exc).strip().splitlines() or [""])[0][:300]
            raise ToolError(f"unexpected error ({type(exc).__name__}: {detail})") from None

    @server.tool()
    async def submit(
        command: Annotated[
            str,
            Field(
                description="The shell command (single mode), or one command per line (mode "
                "'multi'; a line may start with `ant_task_id=ID ant_n_gpus=N`). Do not `cd`: "
                "set env ant_wd. `{rand int 29500 29999}` becomes a random integer (ports)."
            ),
        ],
        task_id: Annotated[
            str | None,
            Field(
                description="A unique id, or a template: `[uuid8]`, `[date]`, `[datetime]`, "
                "`[phrase]`, `[randint:1000:9999]` (e.g. `sweep-lr0.1-[uuid8]`). Default: a "
                "random phrase. 1-128 of letters, digits, '.', '_', '-'."
            ),
        ] = None,
        n_gpus: Annotated[
            int | None, Field(ge=0, description="GPUs it needs (0: CPU only). Default 0.")
        ] = None,
        env: Annotated[
            dict[str, str] | None,
            Field(
                description="Environment variables. Specials: ant_wd (working directory: use "
                "it instead of `cd`), ant_conda_env / ant_conda_env_path (run in a conda env)."
            ),
        ] = None,
        mode: Annotated[
            str, Field(description="'single' (one task) or 'multi' (one task per line).")
        ] = "single",
        priority: Annotated[int, Field(description="Higher starts first.")] = 0,
        after: Annotated[
            list[str] | None,
            Field(
                description="Start only after these tasks ended: `ID` (succeeded), `ID:any` "
                "(ended however), `ID:fail` (did not succeed). In multi mode `[prev]` is the "
                "line before."
            ),
        ] = None,
        tags: Annotated[
            list[str] | None,
            Field(description="Labels to find, act on and pause the tasks together."),
        ] = None,
        retries: Annotated[
            int | None, Field(ge=0, description="Run again up to this many times on failure.")
        ] = None,
        retry_on: Annotated[
            list[str] | None,
            Field(description="Which ends are retried: failure, lost, timeout (default failure)."),
        ] = None,
        retry_backoff: Annotated[
            float | None, Field(ge=0, description="Seconds before the first retry (doubling).")
        ] = None,
        timeout: Annotated[
            float | None,
            Field(gt=0, description="Seconds it may run; then ANT kills it (state timed_out)."),
        ] = None,
        n_nodes: Annotated[
            int | None, Field(ge=1, description="Nodes of a cluster, n_gpus on each (gangs).")
        ] = None,
        notify: Annotated[
            str | None, Field(description="A webhook URL POSTed to when the task ends.")
        ] = None,
        gpu_mem: Annotated[
            str | None,
            Field(
                description="GPU memory instead of whole GPUs, e.g. '20G' or '512M': the task "
                "shares one GPU with other such tasks while their memory fits (small "
                "evaluations, notebooks)."
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Queue one task (or several, mode 'multi') on the ANT GPU scheduler. Returns the new
        tasks ({"tasks": [...]}), each with its task_id (keep it) and state; what fits starts at
        once."""
        tasks = await call(
            lambda c: c.submit(
                command,
                mode=mode,
                n_gpus=n_gpus,
                task_id=task_id,
                env=env,
                priority=priority,
                n_nodes=n_nodes,
                timeout=timeout,
                notify=notify,
                retries=retries,
                retry_on=retry_on,
                retry_backoff=retry_backoff,
                after=after,
                tags=tags,
                gpu_mem=gpu_mem,
            )
        )
        return {"tasks": [_task(t, brief=True) for t in tasks]}

    @server.tool()
    async def list_tasks(
        state: Annotated[
            list[str] | None,
            Field(
                description="Only these states: queued, running, held, succeeded, failed, "
                "killed, lost, timed_out, dependency_failed."
            ),
        ] = None,
        search: Annotated[
            str | None, Field(description="A substring of the id or the command.")
        ] = None,
        tag: Annotated[str | None, Field(description="Only tasks carrying this tag.")] = None,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
        offset: Annotated[int, Field(ge=0)] = 0,
    ) -> dict[str, Any]:
        """List tasks: running, then queued (in start order), held, then ended (newest first).
        Returns {"total": N, "tasks": [...]} with the main fields of each task."""
        tasks, total = await call(
            lambda c: c.list_tasks(
                states=state, q=search, limit=limit, offset=offset, tags=[tag] if tag else None
            )
        )
        return {"total": total, "tasks": [_task(t, brief=True) for t in tasks]}

    @server.tool()
    async def show_task(task_id: str) -> dict[str, Any]:
        """One task in full: state, command, env, gpu_ids, exit_code, times (POSIX seconds),
        pending_reason (why a queued task waits), reason (why it ended so), attempts, after."""
        return _task(await call(lambda c: c.get_task(task_id)))

    @server.tool()
    async def logs(
        task_id: str,
        lines: Annotated[
            int, Field(ge=1, le=MAX_LOG_LINES, description="How many of the last lines.")
        ] = 100,
        attempt: Annotated[
            int | None,
            Field(ge=1, description="One attempt's own log (a retried task keeps each)."),
        ] = None,
    ) -> dict[str, Any]:
        """The last lines of a task's output (running or ended). Call again to follow a running
        task. Returns {"task_id", "state", "text", "lines", "size"}."""

        def read(c: Client) -> dict[str, Any]:
            log = c.log(task_id, lines, attempt=attempt)
            state = c.get_task(task_id).state
            return {**_plain(log), "state": str(state)}

        return await call(read)

    @server.tool()
    async def kill(task_ids: list[str]) -> dict[str, Any]:
        """Kill running tasks (SIGTERM to the process group, then SIGKILL) or cancel queued
        ones. Returns {"tasks": [those killed, as they are now], "errors": ["why one was not"]}
        (a tool error when none was)."""

        def each(c: Client) -> tuple[list[Any], list[str]]:
            done, errors = [], []
            for task_id in dict.fromkeys(task_ids):
                try:
                    done.append(c.kill(task_id))
                except ClientError as exc:
                    if exc.status is None:  # no answer at all: the next would not get one
                        raise
                    errors.append(exc.message)
            if errors and not done:
                raise ToolError("; ".join(errors))
            return done, errors

        done, errors = await call(each)
        return {"tasks": [_task(t, brief=True) for t in done], "errors": errors}

    @server.tool()
    async def restart(
        task_id: str,
        with_dependents: Annotated[
            bool, Field(description="Also re-run the ended tasks that waited for it.")
        ] = False,
    ) -> dict[str, Any]:
        """Queue a copy of an ended task: same command, GPUs and env, new id
        `<task_id>-restart-N`. Returns the copy."""
        return _task(await call(lambda c: c.restart(task_id, with_dependents=with_dependents)))

    @server.tool()
    async def promote(task_id: str) -> dict[str, Any]:
        """Move a queued task to the front of the queue. Returns the task."""
        return _task(await call(lambda c: c.promote(task_id)), brief=True)

    @server.tool()
    async def restore(task_ids: list[str]) -> dict[str, Any]:
        """Put held or lost tasks (after a server restart, or imported from ANT 1.1) back in
        the queue under the same ids."""
        done = await call(lambda c: c.restore(list(dict.fromkeys(task_ids))))
        return {"tasks": [_task(t, brief=True) for t in done]}

    @server.tool()
    async def wait(
        task_ids: list[str],
        timeout: Annotated[
            float,
            Field(
                gt=0,
                le=MAX_WAIT_SECONDS,
                description="Give up after this many seconds (the tasks keep running).",
            ),
        ] = 300,
    ) -> dict[str, Any]:
        """Block until the tasks have ended (succeeded, failed, killed, timed_out, lost,
        dependency_failed) or the timeout passed. Returns {"tasks": [ended...], "pending":
        [ids still not ended], "all_succeeded": bool}."""
        from ant_scheduler.cli.commands import _wait

        ids = list(dict.fromkeys(task_ids))
        done, pending = await call(lambda c: _wait(c, ids, time.monotonic() + timeout))
        tasks = [_task(done[i], brief=True) for i in ids if i in done]
        succeeded = not pending and all(t["state"] == "succeeded" for t in tasks)
        return {"tasks": tasks, "pending": pending, "all_succeeded": succeeded}

    @server.tool()
    async def gpus() -> dict[str, Any]:
        """The GPUs: state (free, allocated, disabled, busy_external, unavailable), the ANT
        tasks on each (task_ids), utilization and memory."""
        found = await call(lambda c: c.gpus())
        return {"gpus": [_plain(g) for g in found]}

    return server


def run(url: str | None, token: str | None) -> None:
    """Serve MCP on stdin/stdout until the client closes it."""
    server = build_server(lambda: Client.discover(url, token))
    server.run("stdio")
