"""`ant` commands that fit ANT into what surrounds it: `ant mcp` (the MCP server for coding
agents, ant_scheduler/mcp_server.py) and `ant import-ant1` (moving over from ANT 1.1). Registered on
the group of cli/app.py like cli/commands.py's, loaded after them by cli/main.py."""

from __future__ import annotations

import os

from ant_scheduler.cli.app import (
    EXIT_OTHER,
    EXIT_REJECTED,
    JSON,
    Context,
    cli,
    client_from,
    echo,
    emit_json,
    fail,
)
from ant_scheduler.cli.arguments import arg

# A recovery file larger than this is refused before it is sent (the server's body limit,
# SERVER_max_body_bytes, is 16 MiB by default and answers 413 above its own).
MAX_FILE_BYTES = 64 * 1024 * 1024


@cli.command(arg("path", metavar="PATH"), JSON, name="import-ant1")
def import_ant1(ctx: Context, path: str, as_json: bool) -> None:
    """Bring in the tasks of an ANT 1.1 recovery file (its RECOVERY_state_file).

    Completed tasks go to history (with their logs when the files are still there), interrupted
    and queued ones to recovery as held (`ant restore ID`), hidden ones to history. Ids are kept;
    an id ANT already has is never overwritten. Running it twice changes nothing. Works while
    ANT runs: the file is sent to the server.

    \b
    Example:
      ant import-ant1 ./ant_runner_logs/ant_recovery_state.json
    """
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", EXIT_OTHER)
    if len(data) > MAX_FILE_BYTES:
        fail(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB", EXIT_REJECTED)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{path} is not an ANT 1.1 recovery file: not UTF-8 text", EXIT_REJECTED)
    where = os.path.dirname(os.path.abspath(path))
    # Log file names in the file are relative to where ANT 1.1 ran: here, the file's directory,
    # or its parent (./ant_runner_logs/ant_recovery_state.json is the seed's default).
    base_dirs = list(dict.fromkeys([os.getcwd(), where, os.path.dirname(where)]))
    with client_from(ctx) as client:
        out = client.import_ant1(text, base_dirs)
    if as_json:
        import dataclasses

        emit_json(dataclasses.asdict(out))
        return
    echo(
        f"imported {out.imported} task(s) ({out.held} held in recovery: ant recover), "
        f"{out.already_there} already there, {len(out.clashes)} clash(es), "
        f"{out.without_task_id} without a task id"
    )
    if out.older_copies:
        echo(f"skipped {out.older_copies} older entries of ids the file has newer entries of")
    if out.logs_copied or out.logs_missing:
        echo(f"logs: {out.logs_copied} brought in, {out.logs_missing} no longer there")
    for task_id in out.clashes:
        echo(f"clash: {task_id} is another task in ANT; not imported (rename one of them)")
    for problem in out.invalid:
        echo(f"skipped: {problem}")


@cli.command()
def mcp(ctx: Context) -> None:
    """Serve the Model Context Protocol on stdin/stdout, for coding agents.

    An agent that speaks MCP starts it and gets tools to submit, list, show, read logs, kill,
    restart, promote, restore and wait for tasks, and read the GPUs; it finds and authenticates
    to the server as every `ant` command does (--url/--token, ANT_URL/ANT_TOKEN, the connection
    file). Needs the MCP SDK: pip install 'ant-scheduler[mcp]'.

    \b
    Register it with an agent, e.g.:
      claude mcp add ant -- ant mcp
    """
    try:
        from ant_scheduler.mcp_server import run
    except ImportError as exc:
        fail(
            f"ant mcp needs the MCP Python SDK ({exc.name or 'mcp'} is missing): "
            "pip install 'ant-scheduler[mcp]'",
            EXIT_OTHER,
        )
    run(ctx.url, ctx.token)
