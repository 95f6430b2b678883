"""What the CLI shows: user text made safe for a terminal, and rich tables.

Colour only on a terminal and never when NO_COLOR is set. Every cell is a `Text`, never a markup
string: ids, commands, env values, reasons and GPU names come from users and processes, and
`[bold]` or `[/x]` in them is shown as typed, not parsed. rich costs ~40 ms to import, so it is
imported by the functions that build a table, and only commands that print one pay for it.
"""

from __future__ import annotations

import os
import re
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (~2 ms a command)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\e"}


def printable(text: str, *, newlines: bool = False) -> str:
    """`text` with control characters made visible (\\e, \\x07, ...): nothing the server or a
    task sends can move the cursor, recolour or retitle the user's terminal. Tabs stay, and
    newlines too when `newlines` is set."""

    def show(m: re.Match[str]) -> str:
        char = m.group()
        if newlines and char == "\n":
            return char
        return _NAMED.get(char, f"\\x{ord(char):02x}")

    return _CONTROL.sub(show, text)


STATE_STYLE = {
    "queued": "yellow",
    "held": "magenta",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "killed": "red",
    "lost": "magenta",
    "timed_out": "red",
    "dependency_failed": "dark_orange",  # never ran: what it waited for went wrong
}


def console() -> Console:
    from rich.console import Console

    plain = bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()
    return Console(
        no_color=plain, highlight=False, soft_wrap=False, width=None if not plain else 200
    )


def text(value: object, style: str = "", *, newlines: bool = False) -> Text:
    """User text as a rich cell: shown whole, no markup, control characters made visible."""
    from rich.text import Text

    return Text(printable(str(value), newlines=newlines), style=style)


def state_cell(state: str) -> Text:
    return text(state, STATE_STYLE.get(state, ""))


def age(since: float | None, now: float) -> str:
    if since is None:
        return "-"
    seconds = max(0, int(now - since))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def timeout_text(task: Any, now: float) -> str:
    """`2h`, `2h (1h03m left)` while it runs, or "-"."""
    timeout = getattr(task, "timeout", None)
    if timeout is None:
        return "-"
    from ant_scheduler.core.durations import format_duration

    limit = format_duration(timeout)
    if task.state != "running" or task.started_at is None:
        return limit
    return f"{limit} ({age(now, task.started_at + timeout)} left)"


def retries_text(task: Any) -> str:
    """`3 on failure, lost; backoff 30s (doubling); attempt 2 of 4`."""
    from ant_scheduler.core.durations import format_duration

    backoff = format_duration(task.retry_backoff) if task.retry_backoff else "none"
    on = ", ".join(task.retry_on)
    total = task.retries + 1
    return (
        f"{task.retries} on {on}; backoff {backoff} (doubling); attempt {task.attempt} of {total}"
    )


def attempts_text(task: Any, now: float) -> str:
    """One line per attempt: number, how it ended, exit code, how long, its log (`ant logs
    --attempt K ID` reads it); the current one last while it runs or waits."""
    lines = []
    for a in task.attempts:
        took = age(a.started_at, a.finished_at) if a.started_at and a.finished_at else "-"
        code = "-" if a.exit_code is None else a.exit_code
        lines.append(f"{a.attempt}  {a.state}  exit {code}  {took}  {a.log_path or '-'}")
    if task.state in ("running", "queued") and task.attempt > len(task.attempts):
        now_doing = "running" if task.state == "running" else "waiting"
        lines.append(f"{task.attempt}  {now_doing}  {task.log_path or ''}".rstrip())
    return "\n".join(lines) or "-"


def after_text(task: Any) -> str:
    """`prep-1, prep-2 (any)`, or "-": the tasks it waits (or waited) for."""
    deps = getattr(task, "after", None) or []
    shown = [d.task_id if d.condition == "ok" else f"{d.task_id} ({d.condition})" for d in deps]
    return ", ".join(shown) or "-"


def gpu_mem_text(task: Any) -> str:
    """'20 GiB declared; using 12 GiB', with 'OVER' once it used more than it declared; '-'
    for a task that takes whole GPUs."""
    from ant_scheduler.core.sizes import format_size

    declared = getattr(task, "gpu_mem", None)
    if declared is None:
        return "-"
    out = f"{format_size(declared)} declared (shares one GPU)"
    used = getattr(task, "gpu_mem_used", None)
    if used is not None:
        out += f"; using {format_size(used)}"
    over = getattr(task, "gpu_mem_over", None)
    if over is not None:
        out += f"; OVER: used up to {format_size(over)}"
    return out


def _over_text(task: Any) -> str:
    from ant_scheduler.core.sizes import format_size

    over, declared = getattr(task, "gpu_mem_over", None), getattr(task, "gpu_mem", None)
    if over is None or declared is None:
        return ""
    return f"GPU memory over: {format_size(over)} of {format_size(declared)} declared"


def _info(task: Any, now: float) -> str:
    if task.state == "running" and _over_text(task):
        return _over_text(task)
    if task.state == "running" and getattr(task, "timeout", None) is not None:
        return "timeout " + timeout_text(task, now)
    if task.state == "queued":
        position = f"#{task.queue_position} " if task.queue_position else ""
        return position + (task.pending_reason or "")
    if task.exit_code is not None:
        return f"exit {task.exit_code}"
    return task.reason or ""


def _time(task: Any, now: float) -> str:
    if task.state == "running":
        return age(task.started_at, now)
    if task.started_at is not None and task.finished_at is not None:
        return age(task.started_at, task.finished_at)
    return age(task.created_at, now)


def task_table(tasks: Sequence[Any], now: float) -> Table:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    # The owner only once there are several users (a task not the admin's): as before without.
    owners = any(getattr(t, "owner", "admin") != "admin" for t in tasks)
    columns: tuple[str, ...] = ("ID", "STATE", "GPUS", "TIME", "INFO", "COMMAND")
    if owners:
        columns = ("ID", "USER", *columns[1:])
    for column in columns:
        fixed = column in ("STATE", "GPUS", "TIME", "USER")
        table.add_column(column, no_wrap=fixed, overflow="ellipsis" if fixed else "fold")
    for task in tasks:
        gpus = ",".join(map(str, task.gpu_ids)) if task.gpu_ids else f"({task.n_gpus})"
        if getattr(task, "gpu_mem", None) is not None:  # a share of the GPU: how much
            from ant_scheduler.core.sizes import short_size

            gpus += f" {short_size(task.gpu_mem)}"
        command = task.submitted.replace("\n", " ")
        command = command if len(command) <= 60 else command[:57] + "..."
        tags = getattr(task, "tags", None)
        if tags:  # ahead of the command, as the UI shows them on a row
            command = " ".join(f"[{tag}]" for tag in tags) + " " + command
        cells = [
            text(task.task_id),
            state_cell(task.state),
            text(gpus),
            text(_time(task, now)),
            text(_info(task, now)),
            text(command),
        ]
        if owners:
            cells.insert(1, text(getattr(task, "owner", "admin")))
        table.add_row(*cells)
    return table


def task_detail(task: Any, now: float) -> Table:
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    env = " ".join(f"{k}={v}" for k, v in task.env.items()) or "-"
    rows: list[tuple[str, Text]] = [
        ("id", text(task.task_id)),
        ("state", state_cell(task.state)),
        ("command", text(task.command, newlines=True)),
        ("submitted", text(task.submitted, newlines=True)),
        ("gpus", text(f"{task.n_gpus} requested; assigned {task.gpu_ids or '-'}")),
        ("gpu memory", text(gpu_mem_text(task))),
        ("placement", text(getattr(task, "placement", None) or "-")),
        ("env", text(env)),
        ("priority", text(task.priority)),
        ("tags", text(", ".join(getattr(task, "tags", None) or ()) or "-")),
        ("user", text(getattr(task, "owner", None) or "admin")),
        ("queue", text(_info(task, now) if task.state == "queued" else "-")),
        ("created", text(age(task.created_at, now) + " ago")),
        ("ran for", text(_time(task, now) if task.started_at else "-")),
        ("timeout", text(timeout_text(task, now))),
        ("notify", text(getattr(task, "notify", None) or "-")),
        ("after", text(after_text(task))),
        ("exit code", text("-" if task.exit_code is None else task.exit_code)),
        ("reason", text(task.reason or "-")),
        ("log", text(task.log_path or "-")),
    ]
    if getattr(task, "retries", 0) or len(getattr(task, "attempts", ())) > 1:
        rows.insert(-3, ("retries", text(retries_text(task))))
        rows.append(("attempts", text(attempts_text(task, now), newlines=True)))
    if getattr(task, "n_nodes", 1) > 1 or getattr(task, "nodes", None):
        nodes = ", ".join(task.nodes) if task.nodes else "-"
        rows.insert(5, ("nodes", text(f"{task.n_nodes} requested; on {nodes}")))
    for key, value in rows:
        table.add_row(key, value)
    return table


def gpu_table(gpus: Sequence[Any]) -> Table:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    # On a cluster each GPU is named by its node (node-b:1); the NODE column says where it is.
    on_nodes = any(getattr(gpu, "node", "") for gpu in gpus)
    columns = ("GPU", "NODE", "NAME", "STATE", "TASKS", "UTIL", "MEMORY")
    for column in columns if on_nodes else tuple(c for c in columns if c != "NODE"):
        table.add_column(column, overflow="fold")
    for gpu in gpus:
        state = gpu.state
        detail = gpu.external or gpu.note or (gpu.error if gpu.state == "unavailable" else None)
        if detail:
            state = f"{state} ({detail})"
        where = (text(gpu.label), text(gpu.node)) if on_nodes else (text(gpu.index),)
        table.add_row(
            *where,
            text(gpu.name),
            text(state),
            text(",".join(gpu.task_ids) or "-"),
            text(f"{gpu.util * 100:.0f}%"),
            text(f"{gpu.mem_used / 2**30:.1f}/{gpu.mem_total / 2**30:.1f} GiB"),
        )
    return table
